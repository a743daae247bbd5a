"""A small synthetic study (seeded) with every table the report can show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reglab.report.aggregate import StudyData

XSS = "<script>alert(1)</script>"


def synthetic_study(*, seeds: int = 3, epochs: int = 30, evil_name: bool = True) -> StudyData:
    rng = np.random.default_rng(0)
    recipes = {  # name: (penalty, strength, norm, final val floor, overfit slope, accuracy shift)
        "none": ("none", 0.0, "none", 0.60, 0.012, 0.00),
        "l2=1e-4": ("L2", 1e-4, "none", 0.58, 0.009, 0.01),
        "l2=1e-3": ("L2", 1e-3, "none", 0.55, 0.004, 0.02),
        "l2=1e-2": ("L2", 1e-2, "none", 0.52, 0.0, 0.03),
        "l1=1e-5": ("L1", 1e-5, "none", 0.59, 0.01, 0.005),
        "l1=1e-4": ("L1", 1e-4, "none", 0.56, 0.005, 0.02),
        "l1=1e-3": ("L1", 1e-3, "none", 0.58, 0.002, 0.01),
        "batchnorm": ("none", 0.0, "batch", 0.57, 0.008, 0.01),
        "layernorm": ("none", 0.0, "layer", 0.56, 0.007, 0.015),
        (XSS if evil_name else "dropout=0.1"): ("none", 0.0, "none", 0.54, 0.003, 0.025),
    }
    trials, ep, res = [], [], []
    tid = 0
    e = np.arange(epochs)
    for name, (pen, strength, norm, floor, slope, shift) in recipes.items():
        speed = {"none": 6.0, "batch": 3.0, "layer": 4.0}[norm]
        for seed in range(seeds):
            noise = 1 + 0.02 * rng.standard_normal(epochs)
            train = (0.05 + 2.2 * np.exp(-e / speed) + 45 * strength) * noise
            val = (floor + 1.7 * np.exp(-e / speed) + slope * np.maximum(e - 8, 0)) * noise[::-1]
            trials.append(
                {
                    "trial_id": tid,
                    "recipe": name,
                    "seed": seed,
                    "norm": norm,
                    "penalty": pen,
                    "strength": strength,
                }
            )
            ep += [
                {"trial_id": tid, "epoch": int(i), "train_loss": t, "val_loss": v}
                for i, t, v in zip(e, train, val)
            ]
            zero = {"L1": min(0.9, 400 * strength)}.get(pen, 0.0)
            res.append(
                {
                    "trial_id": tid,
                    "test_accuracy": 0.62 + shift + 0.01 * rng.standard_normal(),
                    "best_epoch": int(np.argmin(val)),
                    "weight_norm": 12.0 / (1 + 300 * strength),
                    "zero_fraction": zero,
                }
            )
            tid += 1
    w = rng.standard_normal(4000) * 0.3
    soft = np.sign(w) * np.maximum(np.abs(w) - 0.2, 0)
    weights = {"none": w, "L1": soft, "L2": w * 0.5, "elastic net": soft * 0.7}
    selection = pd.DataFrame(
        {
            "recipe": ["l2=1e-3", "l1=1e-4", XSS if evil_name else "dropout=0.1"],
            "regularizer": ["L2(0.001)", "L1(0.0001)", "dropout 0.1"],
            "tensors": [3, 3, 0],
            "parameters": [15_100, 15_100, 0],
            "names": ["hidden.0.linear.weight, hidden.1.linear.weight, out.weight"] * 2 + ["-"],
        }
    )
    return StudyData(
        name="synthetic MNIST-1D study",
        trials=pd.DataFrame(trials),
        epochs=pd.DataFrame(ep),
        results=pd.DataFrame(res),
        metric="test_accuracy",
        baseline="none",
        weights=weights,
        selection=selection,
        config={"dataset": "mnist1d", "epochs": epochs, "note": XSS},
        versions={"reglab": "0.1.0", "torch": "2.13.0"},
    )
