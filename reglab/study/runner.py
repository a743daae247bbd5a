"""Run a study: search every recipe on validation folds, refit the winners, test once, summarize.

The protocol:

1. ``cv`` phase: each recipe's candidates (its fixed values plus one point of its search
   space) train on every seed x fold (k-fold over train + val) or seed (hold-out).
   Selection sees only these validation scores.
2. Each recipe's best candidate (highest mean validation score over seeds x folds; any
   diverged or failed trial disqualifies a candidate) is refit in the ``final`` phase: for
   each seed, trained on the training split (the validation split stays for early
   stopping / the best epoch) and evaluated on the test split, once.
3. Results: mean +- 95 % t-interval over seeds (test) and seeds x folds (validation), a
   paired comparison with the baseline recipe (paired by seed, and by seed and fold), and
   the regularization path (validation score, weight norm, exact-zero fraction against
   each searched strength). Intervals are clipped to the metric's range (an accuracy's to
   [0, 1], a difference of accuracies to [-1, 1], a loss's to >= 0).

With ``budget.halving``, candidates of a searched recipe go through successive halving:
rung ``r`` trains ``epochs / eta**(rungs-1-r)`` epochs on the first seed and fold, and only
the best ``1/eta`` of them go on; the last rung trains full epochs on every seed and fold.

Every finished trial is stored in one transaction; rerunning the same study resumes.

Example:
    >>> import tempfile
    >>> study = Study({"name": "doc", "dataset": {"name": "breast_cancer"}, "seeds": [0, 1],
    ...     "model": {"hidden": [8]}, "training": {"epochs": 2, "batch_size": 128},
    ...     "validation": {"kind": "holdout"}, "recipes": {"none": {}, "l2": {"l2": 1e-3}}})
    >>> res = study.run(out=tempfile.mkdtemp(), progress=False)
    >>> sorted(res["recipes"])
    ['l2', 'none']
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from reglab.study.execute import (
    MAX_MEMBERS,
    TrialOutcome,
    TrialSpec,
    check_params,
    data_fingerprint,
    data_source,
    group_checkpoint,
    population_key,
)
from reglab.study.progress import make_progress
from reglab.study.schema import StudyConfig, load_config, lower_is_better, parse_config
from reglab.study.search import RecipeSearch
from reglab.study.stats import kfold_test_to_train, mean_ci, paired_comparison
from reglab.study.storage import StudyStorage, default_url, params_key

__all__ = ["Study", "default_out", "check_study_dir", "make_study_dir"]


def default_out(config: StudyConfig) -> Path:
    """Where a study is written when no ``out`` is given: ``./studies/<name>``."""
    return Path("studies") / config.name


class Study:
    """A regularization study: the same object the ``reglab study`` command runs.

    Args:
        config: a :class:`~reglab.study.schema.StudyConfig`, a mapping, or a YAML path / built-in name.

    Example:
        >>> Study.from_yaml("breast_cancer").config.dataset.name
        'breast_cancer'
    """

    def __init__(self, config: StudyConfig | dict[str, Any] | str | Path):
        if isinstance(config, StudyConfig):
            self.config = config
        elif isinstance(config, dict):
            self.config = parse_config(config)
        else:
            self.config = load_config(config)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Study:
        """Load a YAML config file or a built-in study (``mnist1d``, ``digits``, ``breast_cancer``,
        ``diabetes``)."""
        return cls(load_config(path))

    def run(
        self,
        out: str | Path | None = None,
        *,
        backend: str = "local",
        workers: int = 1,
        address: str | None = None,
        storage: str | None = None,
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Run (or resume) the study; return the results summary (also stored in the database).

        Args:
            out: the study directory (database and checkpoints); default ``studies/<name>``.
            backend: ``"local"`` (``workers`` processes) or ``"ray"`` (``address`` of a cluster, or
                a local Ray instance).
            storage: an SQLAlchemy URL instead of ``<out>/study.db`` (e.g. ``postgresql+psycopg://...``).
            progress: live progress (rich on a terminal); ``None`` picks by terminal, ``False`` is silent.
        """
        from reglab.study.backends import make_backend

        backend_ = make_backend(backend, workers=workers, address=address)  # validates before any I/O
        self.config = _preflight(self.config)  # refused before anything is written if it cannot run
        out_dir = Path(out) if out is not None else default_out(self.config)
        make_study_dir(out_dir)
        store = StudyStorage(storage or default_url(out_dir))
        store.save_config(self.config.name, self.config.canonical_json(), same=self.config.same_study,
                          differences=self.config.differences)
        fingerprint = data_fingerprint(self.config)
        store.save_data_fingerprint(fingerprint, data_source(self.config))
        # Every trial carries the fingerprint and refuses data that hashes otherwise (a file edited mid-run).
        runner = _Runner(self.config, store, out_dir, make_progress(progress), fingerprint)
        with backend_ as engine:
            try:
                return runner.run(engine)
            finally:
                runner.progress.close()
                store.close()


def check_study_dir(out_dir: Path, flag: str = "out") -> None:
    """Refuse, without touching anything, a study directory that is a file or lies under a file.

    ``flag`` names the argument in the message (``out`` for Python, ``--out`` for the CLI).
    """
    from reglab.errors import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{flag} {str(out_dir)!r} is a file; give a folder for the study (its database and "
                        "checkpoints)")
    above = next((p for p in out_dir.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{flag} {str(out_dir)!r}: the study folder cannot be created ({str(above)!r} is a "
                        "file); give a folder")


def make_study_dir(out_dir: Path, flag: str = "out") -> None:
    """Create the study directory and its missing parents; one that cannot be made raises ``UserError``."""
    from reglab.errors import UserError

    check_study_dir(out_dir, flag)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        culprit = f"{str(exc.filename)!r}: " if exc.filename and str(exc.filename) != str(out_dir) else ""
        raise UserError(f"the study folder {str(out_dir)!r} ({flag}) cannot be created: "
                        f"{culprit}{exc.strerror or exc}") from None


def _preflight(config: StudyConfig) -> StudyConfig:
    """Load the dataset, fill in the task's defaults (:func:`resolve_task_defaults`) and build every
    recipe's first candidates: a mistake raises ``UserError`` now. Returns the config to run."""
    from reglab._validation import InvalidParameterError
    from reglab.errors import UserError
    from reglab.study.execute import load_splits, resolve_task_defaults

    try:
        load_splits(config)
    except (UserError, InvalidParameterError) as exc:
        raise UserError(f"dataset: {exc}") from None
    config = resolve_task_defaults(config)
    for name, recipe in config.recipes.items():
        for c in RecipeSearch(recipe, config.search, config.budget).initial():
            check_params(config, name, c)
    return config


def _survivors(n: int, eta: int) -> int:
    return max(1, math.ceil(n / eta))


def _rung_sizes(n: int, rungs: int, eta: int) -> tuple[list[int], int]:
    """Successive halving of ``n`` candidates: how many each rung trains, and how many survive the last.

    Example:
        >>> _rung_sizes(9, 3, 3), _rung_sizes(1, 3, 3)
        (([9, 3], 1), ([], 1))
    """
    sizes: list[int] = []
    for _ in range(rungs - 1):
        if n <= 1:
            break
        sizes.append(n)
        n = _survivors(n, eta)
    return sizes, n


class _Runner:
    def __init__(self, config: StudyConfig, store: StudyStorage, out_dir: Path, progress: Any,
                 fingerprint: str | None = None):
        self.config, self.store, self.out_dir, self.progress = config, store, out_dir, progress
        self.fingerprint = fingerprint  # the data's, stored at the start: each trial checks it
        self.done = store.finished()
        self.ckpt_dir = out_dir / "checkpoints"
        self.ckpt_dir.mkdir(exist_ok=True)
        v = config.validation
        self.folds = list(range(v.folds)) if v.kind == "kfold" else [0]
        self.shared_final = v.kind == "holdout"
        self.searches = {n: RecipeSearch(r, config.search, config.budget) for n, r in config.recipes.items()}

    # -- execution ---------------------------------------------------------------------------
    def _spec(self, phase: str, recipe: str, params: dict[str, Any], seed: int, fold: int,
              epochs: int) -> TrialSpec:
        key = f"{phase}|{recipe}|{params_key(params)}|{seed}|{fold}"
        if self.shared_final and phase in ("cv", "final"):
            # Hold-out: a final trial trains exactly what its cv trial trained (train, monitored on
            # val), so it resumes the cv trial's finished checkpoint and only evaluates the test split.
            key = f"holdout|{recipe}|{params_key(params)}|{seed}"
        name = hashlib.sha1(key.encode()).hexdigest()[:20]
        return TrialSpec(phase, recipe, params, seed, fold, epochs, str(self.ckpt_dir / name),
                         data=self.fingerprint)

    def _execute(self, engine: Any, specs: list[TrialSpec]) -> None:
        todo = [s for s in specs if s.key() not in self.done]
        self.progress.add(len(specs) - len(todo), len(todo))
        if not todo:
            return
        # Trials the population engine can express train together (same phase, fold, architecture and
        # early-stopping rule), in chunks of at most MAX_MEMBERS; every other trial is its own group.
        # Grouping depends only on the planned trials, so a resumed study forms the same groups.
        pooled: dict[tuple[Any, ...], list[TrialSpec]] = defaultdict(list)
        groups: list[list[TrialSpec]] = []
        for s in todo:
            key = population_key(self.config, s)
            if key is None:
                groups.append([s])
            else:
                pooled[key].append(s)
        for members in pooled.values():
            groups += [members[i : i + MAX_MEMBERS] for i in range(0, len(members), MAX_MEMBERS)]
        ids: dict[Any, int] = {}  # trial ids, filled as this process claims groups

        def record(outcomes: list[TrialOutcome]) -> None:
            outcomes = [_unpoisoned(o) for o in outcomes]
            # A group is stored in one transaction: a population's members finish together.
            self.store.finish_many([
                {"trial_id": ids[o.spec.key()], "status": o.status, "metrics": o.metrics,
                 "history": o.history, "duration": o.duration, "error": o.error,
                 "histogram": o.histogram} for o in outcomes
            ])
            for o in outcomes:
                spec = o.spec
                self.done[spec.key()] = {"status": o.status, "metrics": o.metrics}
                keep = self.shared_final and spec.phase == "cv"  # its final trial resumes from it
                if spec.checkpoint and not keep:  # committed above: the checkpoint is no longer needed
                    shutil.rmtree(spec.checkpoint, ignore_errors=True)
                self.progress.advance(o)
            group = group_checkpoint([o.spec for o in outcomes])  # a population's epoch checkpoint
            if group is not None:
                shutil.rmtree(group, ignore_errors=True)

        from reglab.study.backends import run_claimed

        # Other processes may run this study too: each group is claimed before it runs, and this
        # returns once every group is finished, by anyone; their trials then count as ours (and
        # in the progress display as soon as this process sees them finished).
        run_claimed(engine, self.config, groups, self.store, ids, record, elsewhere=self.progress.elsewhere)
        self.done = self.store.finished()

    def _trials(self, phase: str, recipe: str, params: dict[str, Any], seeds: list[int],
                folds: list[int]) -> list[dict[str, Any]]:
        pk = params_key(params)
        return [self.done[(phase, recipe, pk, s, f)] | {"seed": s, "fold": f}
                for s in seeds for f in folds if (phase, recipe, pk, s, f) in self.done]

    def _score(self, recipe: str, params: dict[str, Any], seeds: list[int], folds: list[int],
               phase: str = "cv") -> float | None:
        """Mean validation score of a candidate, or None if any of its trials did not finish cleanly."""
        rows = self._trials(phase, recipe, params, seeds, folds)
        if len(rows) < len(seeds) * len(folds) or any(r["status"] != "done" for r in rows):
            return None
        return sum(r["metrics"][self.config.search.metric] for r in rows) / len(rows)

    def _better(self, a: float | None, b: float | None) -> bool:
        if a is None:
            return False
        if b is None:
            return True
        return a < b if lower_is_better(self.config.search.metric) else a > b

    # -- phases ------------------------------------------------------------------------------
    def _halve(self, engine: Any, name: str, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        b, epochs = self.config.budget, self.config.training.epochs
        seed, fold = self.config.seeds[0], self.folds[0]
        sizes, _ = _rung_sizes(len(candidates), b.rungs, b.eta)
        for rung, size in enumerate(sizes):
            rung_epochs = max(1, epochs // b.eta ** (b.rungs - 1 - rung))
            phase = f"rung{rung}"
            self._execute(engine, [self._spec(phase, name, c, seed, fold, rung_epochs) for c in candidates])
            scored = [(self._score(name, c, [seed], [fold], phase), i) for i, c in enumerate(candidates)]
            keep = _survivors(size, b.eta)
            sign = 1.0 if lower_is_better(self.config.search.metric) else -1.0
            ranked = sorted(scored, key=lambda t: (t[0] is None, sign * (t[0] or 0.0), t[1]))
            candidates = [candidates[i] for _, i in sorted(ranked[:keep], key=lambda t: t[1])]
        return candidates

    def _cv_specs(self, name: str, c: dict[str, Any]) -> list[TrialSpec]:
        e = self.config.training.epochs
        return [self._spec("cv", name, c, s, f, e) for s in self.config.seeds for f in self.folds]

    def planned(self) -> int:
        """Every trial the study runs, known before any runs: each recipe's candidates (a grid's points,
        random / TPE ``search.trials``, capped by ``budget.max_candidates``) on every seed x fold, the
        halving rungs' trials, and one final trial per recipe and seed (a recipe with no candidate
        left to refit has its final trials skipped)."""
        cfg, b = self.config, self.config.budget
        total = 0
        for search in self.searches.values():
            n = search.total
            if b.halving and not search.sequential:
                sizes, n = _rung_sizes(n, b.rungs, b.eta)  # as _halve: each rung on one seed and fold
                total += sum(sizes)
            total += n * len(cfg.seeds) * len(self.folds)
        return total + len(self.searches) * len(cfg.seeds)

    def run(self, engine: Any) -> dict[str, Any]:
        cfg = self.config
        self.progress.plan(self.planned())
        candidates: dict[str, list[dict[str, Any]]] = {}
        for name, search in self.searches.items():
            cands = search.initial()
            for c in cands:
                check_params(cfg, name, c)
            if cfg.budget.halving and not search.sequential and len(cands) > 1:
                cands = self._halve(engine, name, cands)
            candidates[name] = cands
        # Independent candidates of all recipes go out together, so backends can parallelize them.
        self._execute(engine, [s for n, cs in candidates.items() for c in cs for s in self._cv_specs(n, c)])
        for name, search in self.searches.items():
            while search.sequential:  # TPE: each candidate waits for the earlier ones' scores
                history = [(c, self._score(name, c, cfg.seeds, self.folds)) for c in candidates[name]]
                nxt = search.next(history)
                if nxt is None:
                    break
                check_params(cfg, name, nxt)
                candidates[name].append(nxt)
                self._execute(engine, self._cv_specs(name, nxt))
        best: dict[str, dict[str, Any] | None] = {}
        for name, cands in candidates.items():
            chosen, chosen_score = None, None
            for c in cands:
                score = self._score(name, c, cfg.seeds, self.folds)
                if self._better(score, chosen_score):
                    chosen, chosen_score = c, score
            best[name] = chosen
            if chosen is None:
                self.progress.skip(len(cfg.seeds), f"final {name}: no candidate of it finished its cv trials")
        e = cfg.training.epochs
        self._execute(engine, [self._spec("final", n, c, s, -1, e)
                               for n, c in best.items() if c is not None for s in cfg.seeds])
        summary = self._summarize(candidates, best)
        self.store.save_results(summary)
        shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        return summary

    # -- summary -----------------------------------------------------------------------------
    def _summarize(self, candidates: dict[str, list[dict[str, Any]]],
                   best: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        from reglab.study.summary import run_environment

        cfg = self.config
        metric = cfg.search.metric
        test_metric = "test_" + metric.removeprefix("val_")
        base = best.get(cfg.baseline)
        base_test = self._by_key("final", cfg.baseline, base, [-1], test_metric, by_fold=False)
        base_cv = self._by_key("cv", cfg.baseline, base, self.folds, metric, by_fold=True)
        # k-fold scores share training data: their intervals and tests take Nadeau and Bengio's correction.
        ratio = kfold_test_to_train(len(self.folds))
        recipes = {}
        for name, cands in candidates.items():
            search = self.searches[name]
            chosen = best[name]
            entry: dict[str, Any] = {
                "searched": search.recipe.searched(),
                "candidates": len(cands),
                "best_params": chosen,
                "status": "ok" if chosen is not None else self._failure(name, cands),
            }
            if chosen is not None:
                test = self._by_key("final", name, chosen, [-1], test_metric, by_fold=False)
                cv = self._by_key("cv", name, chosen, self.folds, metric, by_fold=True)
                entry["test"] = mean_ci(list(test.values()), metric=test_metric)
                entry["validation"] = mean_ci(list(cv.values()), metric=metric, test_to_train=ratio)
                finals = self._trials("final", name, chosen, cfg.seeds, [-1])
                for k in ("weight_norm", "zero_fraction"):
                    entry[k] = mean_ci([r["metrics"].get(k) for r in finals if r["status"] == "done"])["mean"]
                if name != cfg.baseline and base is not None:
                    entry["vs_baseline"] = {
                        "test": paired_comparison(test, base_test, metric=test_metric),
                        "validation": paired_comparison(cv, base_cv, metric=metric, test_to_train=ratio),
                    }
            entry["path"] = self._path(name, cands)
            recipes[name] = entry
        return {"study": cfg.name, "metric": metric, "test_metric": test_metric, "baseline": cfg.baseline,
                "seeds": cfg.seeds, "folds": len(self.folds), "validation": cfg.validation.kind,
                "lower_is_better": lower_is_better(metric), "versions": run_environment(cfg.training.threads),
                "recipes": recipes}

    def _failure(self, name: str, cands: list[dict[str, Any]]) -> str:
        rows = [r for c in cands for r in self._trials("cv", name, c, self.config.seeds, self.folds)]
        return "failed" if any(r["status"] == "failed" for r in rows) else "diverged"

    def _by_key(self, phase: str, recipe: str, params: dict[str, Any] | None, folds: list[int],
                metric: str, *, by_fold: bool) -> dict[Any, float]:
        if params is None:
            return {}
        rows = self._trials(phase, recipe, params, self.config.seeds, folds)
        return {(r["seed"], r["fold"]) if by_fold else r["seed"]: r["metrics"][metric]
                for r in rows if r["status"] == "done" and metric in r["metrics"]}

    def _path(self, name: str, cands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The regularization path: validation score, weight norm and zeros per candidate."""
        searched = self.searches[name].recipe.searched()
        metric = self.config.search.metric
        # The validation score takes the fold correction the results' validation interval takes (_summarize).
        ratio = kfold_test_to_train(len(self.folds))
        out = []
        for c in cands:
            rows = self._trials("cv", name, c, self.config.seeds, self.folds)
            ok = [r for r in rows if r["status"] == "done"]
            point = {"params": {k: c[k] for k in searched}, "trials": len(rows),
                     "diverged": sum(r["status"] == "diverged" for r in rows),
                     "failed": sum(r["status"] == "failed" for r in rows)}
            point[metric] = mean_ci([r["metrics"][metric] for r in ok], metric=metric, test_to_train=ratio)
            for k in ("weight_norm", "zero_fraction"):
                point[k] = mean_ci([r["metrics"][k] for r in ok], metric=k)
            out.append(point)
        key = searched[0] if searched else None
        return sorted(out, key=lambda p: _sort_value(p["params"].get(key))) if key else out


def _unpoisoned(outcome: TrialOutcome) -> TrialOutcome:
    """A ``done`` trial with a non-finite metric is stored as ``diverged``, so no NaN enters a mean."""
    bad = sorted(k for k, v in outcome.metrics.items() if isinstance(v, float) and not math.isfinite(v))
    if outcome.status != "done" or not bad:
        return outcome
    reason = f"non-finite {', '.join(f'{k}={outcome.metrics[k]}' for k in bad)} after training"
    metrics = {"diverged_epoch": len(outcome.history) - 1, "reason": reason}
    return dataclasses.replace(outcome, status="diverged", metrics=metrics)


def _sort_value(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) else (1, str(v))
