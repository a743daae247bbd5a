"""Build a :class:`~reglab.report.aggregate.StudyData` from a finished study's storage.

What comes from where (``reglab.study.storage`` tables):

* ranking: the ``final`` phase (each recipe's chosen parameters refit on every seed and
  scored on the test split), by the summary's ``test_metric`` (the validation metric when
  the study has no test split); a recipe with no finished final trial is listed last with the
  reason (``StudyData.unfinished``: no candidate finished, or its final trials diverged / failed);
* learning curves, gap, convergence by norm: the ``final`` trials' per-epoch rows;
* regularization paths: the ``cv`` trials of recipes that search one numeric parameter
  (validation metric, weight norm and exact-zero fraction per candidate);
* what was regularized: each chosen recipe's model rebuilt (not trained) from the config
  and its penalty / decay selector described (``Selector.describe``);
* weight histograms: the ``histograms`` table (fixed bins over each final trial's
  regularized weights, with its exact-zero count), one trial per recipe (the lowest seed);
* config, seeds; versions are those the study recorded when it ran (its summary), else the
  running ones, marked as such (studies from before versions were recorded).

Example:
    >>> load_study("no/such/study")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    reglab.errors.UserError: no study at 'no/such/study': ...
"""

from __future__ import annotations

import json
import numbers
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from reglab.errors import UserError
from reglab.report.aggregate import StudyData

__all__ = ["load_study"]

_DECAY_KEYS = ("weight_decay", "decoupled_decay")


def load_study(study: str | Path, *, describe: bool = True) -> StudyData:
    """Read a study directory, ``study.db`` file or database URL into a :class:`StudyData`.

    Args:
        study: where the study lives (as ``reglab study`` wrote it).
        describe: rebuild each chosen model to list what was regularized (loads the dataset).

    Raises:
        UserError: no study there, or the study has not finished (no results yet).
    """
    from reglab.study.export import open_storage
    from reglab.study.schema import lower_is_better

    storage = open_storage(study)
    try:
        config_text = storage.load_config()
        summary = storage.load_results()
        trials = storage.trials(finished_only=True)
        if config_text is None or summary is None:
            where = f"--storage {study}" if "://" in str(study) else f"--out {study}"
            raise UserError(
                f"the study at {study} has no results yet; finish it with `reglab study CONFIG {where}` "
                "(it resumes where it stopped)."
            )
        config = json.loads(config_text)
        finals = [t for t in trials if t["phase"] == "final" and t["status"] == "done"]
        if not finals:  # the study finished (it has a summary): a rerun would end the same way
            why = "; ".join(f"{name}: {why}" for name, why in _unfinished(summary, trials, set()).items())
            raise UserError(
                f"the study at {study} has no result to report, no recipe has a finished final trial "
                f"({why or 'no recipes'}); rerunning it ends the same way: change the config "
                "(`reglab show` lists each recipe's trials)"
            )
        metric = summary.get("test_metric", "test_accuracy")
        if not any(metric in (t["metrics"] or {}) for t in finals):
            metric = summary.get("metric", "val_accuracy")
        epoch_rows = [
            {"trial_id": t["id"], **row} for t in finals for row in storage.epochs(t["id"])
        ]
        stored = storage.histograms()
    finally:
        storage.close()
    trial_frame = pd.DataFrame(
        [
            {"trial_id": t["id"], "recipe": t["recipe"], "seed": t["seed"], "fold": t["fold"],
             "norm": t["params"].get("norm") or "none"}
            for t in finals
        ]
    )
    results = pd.DataFrame([{"trial_id": t["id"], **_numbers(t["metrics"])} for t in finals])
    epochs = pd.DataFrame(epoch_rows)
    if epochs.empty or not {"train_loss", "val_loss"} <= set(epochs.columns):
        epochs = pd.DataFrame(columns=["trial_id", "epoch", "train_loss", "val_loss"])
    baseline = summary.get("baseline")
    recipes = set(trial_frame["recipe"])
    unfinished = _unfinished(summary, trials, recipes)
    chosen = {n: r.get("best_params") for n, r in summary.get("recipes", {}).items() if r.get("best_params")
              is not None}
    if "test_metric" in summary:  # what was regularized: in the ranking's order, as the tables
        from reglab.study.summary import recipe_order

        chosen = {n: chosen[n] for n in recipe_order(summary) if n in chosen}
    return StudyData(
        name=str(summary.get("study", config.get("name", "study"))),
        trials=trial_frame,
        epochs=epochs,
        results=results,
        metric=metric,
        higher_is_better=not lower_is_better(metric),
        baseline=baseline if baseline in recipes or baseline in unfinished else None,
        paths=_paths(trials, summary),
        selection=_selection(config, chosen) if describe else None,
        config=config,
        versions=summary.get("versions") or _running_versions(),
        histograms=_histograms(finals, stored),
        unfinished=unfinished,
    )


def _unfinished(summary: dict[str, Any], trials: list[dict[str, Any]], reported: set[str]) -> dict[str, str]:
    """The summary's recipes without a finished final trial, with the reason (``reglab show``'s words)."""
    out = {}
    for name, entry in summary.get("recipes", {}).items():
        if name in reported:
            continue
        if entry.get("status", "ok") != "ok":
            out[name] = f"no candidate finished ({entry['status']})"
            continue
        ended = [t["status"] for t in trials if t["phase"] == "final" and t["recipe"] == name]
        counts = ", ".join(f"{ended.count(s)} {s}" for s in sorted(set(ended)))
        out[name] = f"no final trial finished ({counts})" if counts else "no final trial finished"
    return out


def _histograms(finals: list[dict[str, Any]], stored: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One stored weight histogram per recipe: its final trial with the lowest seed."""
    out: dict[str, dict[str, Any]] = {}
    for t in sorted(finals, key=lambda t: (t["seed"], t["id"])):
        if t["id"] in stored and t["recipe"] not in out:
            out[t["recipe"]] = stored[t["id"]] | {"seed": t["seed"]}
    return out


def _numbers(metrics: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, numbers.Real)}


def _paths(trials: list[dict[str, Any]], summary: dict[str, Any]) -> pd.DataFrame | None:
    rows = []
    for name, entry in summary.get("recipes", {}).items():
        searched = entry.get("searched") or []
        if len(searched) != 1:
            continue
        key = searched[0]
        for t in trials:
            value = t["params"].get(key)
            if t["phase"] == "cv" and t["recipe"] == name and t["status"] == "done" and isinstance(
                value, numbers.Real
            ):
                point = {"penalty": f"{name} ({key})", "recipe": name, "strength": float(value)}
                rows.append(point | _numbers(t["metrics"]))
    return pd.DataFrame(rows) if rows else None


def _selection(config: dict[str, Any], chosen: dict[str, dict[str, Any]]) -> pd.DataFrame | None:
    """Rebuild each chosen model (no training) and describe what its penalty / decay selects."""
    from reglab.selectors import Selector
    from reglab.study.execute import build_model, load_splits, make_penalty
    from reglab.study.schema import StudyConfig
    from reglab.study.summary import format_params

    try:
        cfg = StudyConfig.model_validate(config)
        splits = load_splits(cfg)
    except (UserError, ValueError):  # a config this reglab cannot rebuild: leave the section out
        return None
    rows = []
    for name, params in chosen.items():
        model = build_model(cfg, params, splits)
        penalty = make_penalty(params)
        terms = getattr(penalty, "terms", (penalty,)) if penalty is not None else ()
        described = [(repr(t), t.selector.describe(model)) for t in terms]
        described += [(f"{k}={params[k]}", Selector().describe(model)) for k in _DECAY_KEYS if params.get(k)]
        if not described:
            rows.append({"recipe": name, "regularizer": format_params(params) or "none", "tensors": 0,
                         "parameters": 0, "names": "no penalty or decay (layers / data only)"})
        for label, sel in described:
            rows.append({"recipe": name, "regularizer": label, "tensors": sel.num_tensors,
                         "parameters": sel.num_params, "names": ", ".join(sel.names)})
    return pd.DataFrame(rows) if rows else None


def _running_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("reglab", "torch", "numpy", "scikit-learn", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    out["note"] = "versions of the reporting run; the study did not record its own"
    return out
