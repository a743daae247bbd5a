"""Shared tiny study configs: breast_cancer, a 4-unit MLP, 2 epochs (each trial well under a second)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "name": "tiny",
    "dataset": {"name": "breast_cancer"},
    "model": {"family": "mlp", "hidden": [4]},
    "training": {"epochs": 2, "batch_size": 128, "lr": 0.01},
    "seeds": [0, 1],
    "validation": {"kind": "kfold", "folds": 2},
    "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-1]}}},
}


@pytest.fixture
def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY)
