"""Check a diagnosis: run a small study of its recommendations against the run's own recipe.

A history file holds no data or model, so verification needs the study config the run came
from (a YAML file or a built-in name). The verification study has the config's baseline
recipe as ``as-is`` and one recipe per recommendation that maps onto recipe keys
(:data:`TRANSLATIONS`); recommendations that do not (``epochs_factor``, ``max_dropout``,
augmentation without a task, image augmentation of data whose image shape is unknown) are
listed as not verified. Image augmentation is a pad-and-crop translation (``crop`` with the
image's own size, padded by an eighth of its height, at least 1 pixel): flat inputs are read as
one-channel square images when their feature count is a square (``digits``: 64 = 8 x 8).
Each ``try-k`` is compared with ``as-is`` by the study's paired test on the test split
(validation when there is none):

* ``helped``: the paired difference's 95 % interval lies entirely on the better side;
* ``hurt``: entirely on the worse side;
* ``no clear difference``: the interval contains 0 (or fewer than 2 seeds).

Example:
    >>> from reglab.report.diagnose import Recommendation
    >>> rec = Recommendation("add L1", "many features", {"l1": 1e-4})
    >>> to_recipe(rec, {"dropout": 0.1}, task=None, lr=0.01)
    {'dropout': 0.1, 'l1': 0.0001, 'proximal': True}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reglab.errors import UserError
from reglab.report.diagnose import Diagnosis, Recommendation

__all__ = ["VerifiedRecommendation", "to_recipe", "verify", "TRANSLATIONS", "TASK_AUGMENT"]

#: Augmentation tried for "augmentation" per task (names from ``reglab.augment.registry``).
TASK_AUGMENT = {
    "image": "crop", "signal": "signal_default", "tabular": "feature_noise", "text": "random_swap"
}
#: Recommendation keys that map onto study recipe keys.
TRANSLATIONS = (
    "dropout", "weight_decay", "l1", "augment", "early_stopping", "regularization_factor", "lr_factor"
)
_SCALED = ("l1", "l2", "elastic_net", "weight_decay", "decoupled_decay", "dropout", "gaussian_noise",
           "label_smoothing", "mixup", "group_lasso")


@dataclass(frozen=True)
class VerifiedRecommendation:
    """One recommendation, the recipe that tested it and what happened."""

    action: str
    recipe: dict[str, Any] | None
    outcome: str
    diff: float = math.nan
    low: float = math.nan
    high: float = math.nan
    pairs: int = 0


def to_recipe(
    rec: Recommendation,
    base: dict[str, Any],
    *,
    task: str | None,
    lr: float,
    image_shape: tuple[int, ...] | None = None,
) -> dict[str, Any] | None:
    """The study recipe that tries ``rec`` on top of ``base``, or ``None`` if it maps onto no recipe key.

    ``image_shape`` is one example's input shape, for image augmentation (``crop`` needs the image
    size): ``(C, H, W)``, or ``(F,)`` for flat inputs, read as a square one-channel image.
    """
    change = dict(rec.change)
    if not change or any(k not in TRANSLATIONS for k in change):
        return None
    out = dict(base)
    for key, value in change.items():
        if key == "l1":
            out.update(l1=value, proximal=True)
        elif key == "augment":
            name = TASK_AUGMENT.get(value if isinstance(value, str) else task or "")
            spec = _crop(image_shape) if name == "crop" else name
            if spec is None:
                return None
            out["augment"] = spec
        elif key == "regularization_factor":
            scaled = {k: v * value for k, v in base.items() if k in _SCALED and isinstance(v, int | float)}
            if not scaled:
                return None  # nothing numeric to reduce in the run's recipe
            out.update(scaled)
        elif key == "lr_factor":
            out["lr"] = lr * value
        else:
            out[key] = value
    return out


def _crop(shape: tuple[int, ...] | None) -> dict[str, Any] | None:
    """The ``crop`` augmentation for images of ``shape``: the classic pad-and-crop translation.

    Example:
        >>> _crop((64,))
        {'name': 'crop', 'size': [8, 8], 'padding': 1, 'shape': [1, 8, 8]}
        >>> _crop((3, 32, 32)), _crop((40,))
        ({'name': 'crop', 'size': [32, 32], 'padding': 4}, None)
    """
    if shape is None or len(shape) not in (1, 3):
        return None
    flat = len(shape) == 1
    if flat:
        side = math.isqrt(shape[0])
        if side * side != shape[0]:
            return None
        shape = (1, side, side)
    padding = max(1, round(shape[1] / 8))
    spec: dict[str, Any] = {"name": "crop", "size": [shape[1], shape[2]], "padding": padding}
    if flat:
        spec["shape"] = list(shape)
    return spec


def verify(diagnosis: Diagnosis, config: str | Path, *, out: str | Path) -> list[VerifiedRecommendation]:
    """Run the verification study (see the module docstring) and judge each recommendation.

    Args:
        diagnosis: what :func:`~reglab.report.diagnose.diagnose` said.
        config: the study config the run came from: a YAML path or a built-in name.
        out: the verification study's directory (rerun to resume).
    """
    from reglab.study import Study, StudyConfig, load_config
    from reglab.study.execute import load_splits, resolve_task_defaults
    from reglab.study.schema import lower_is_better

    # Resolved before the dump below writes every default out: a regression's unwritten metric and
    # monitors would otherwise become val_accuracy, which the verification study then refuses.
    cfg = resolve_task_defaults(load_config(config))
    # crop needs the images' size: only an image task loads the data for it (the study loads it anyway).
    image_shape = tuple(load_splits(cfg).input_shape) if diagnosis.context.task == "image" else None
    base = cfg.recipes[cfg.baseline].model_dump(exclude_none=True, exclude={"name"}, mode="json")
    recipes: dict[str, dict[str, Any]] = {"as-is": base}
    tried: list[tuple[Recommendation, str | None, dict[str, Any] | None]] = []
    for rec in diagnosis.recommendations:
        recipe = to_recipe(rec, base, task=diagnosis.context.task, lr=cfg.training.lr,
                           image_shape=image_shape)
        name = None
        if recipe is not None and recipe not in recipes.values():
            name = f"try-{len(recipes)}"
            recipes[name] = recipe
        tried.append((rec, name, recipe))
    if len(recipes) == 1:
        raise UserError(
            "none of the recommendations maps onto a study recipe, so there is nothing to verify; "
            "run `reglab diagnose` without --verify."
        )
    data = cfg.model_dump(mode="json")
    data.update(name=f"{cfg.name}-verify", recipes=recipes, baseline="as-is")
    summary = Study(StudyConfig.model_validate(data)).run(out=out, progress=False)
    higher = not lower_is_better(summary["metric"])  # MSE and MAE too, not only losses
    results = []
    for rec, name, recipe in tried:
        if name is None:
            skipped = "not verified (no matching recipe key)"
            results.append(VerifiedRecommendation(rec.action, recipe, skipped))
            continue
        vs = summary["recipes"][name].get("vs_baseline", {})
        cmp = vs.get("test") if vs.get("test", {}).get("n") else vs.get("validation", {})
        diff, low, high, n = (cmp.get(k, math.nan) for k in ("diff", "low", "high", "n"))
        outcome = _judge(low, high, int(n or 0), higher_is_better=higher)
        results.append(VerifiedRecommendation(rec.action, recipe, outcome, diff, low, high, int(n or 0)))
    return results


def _judge(low: float, high: float, n: int, *, higher_is_better: bool) -> str:
    """``helped`` / ``hurt`` when the paired interval excludes 0, else ``no clear difference``."""
    if n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return "no clear difference"
    better_low, better_high = (low, high) if higher_is_better else (-high, -low)
    if better_low > 0:
        return "helped"
    if better_high < 0:
        return "hurt"
    return "no clear difference"
