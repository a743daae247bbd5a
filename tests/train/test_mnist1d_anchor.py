"""MNIST-1D anchor (Greydanus & Kobak 2024): logistic regression reaches about 32 % test accuracy.

Recipe of the paper: Adam lr 1e-2, batch 100, about 6000 steps, no weight decay. The MLP and
CNN anchors (65-68 %, 92-94 %) are too slow for the default run: benchmarks/mnist1d_paper.py.
About 3 s on a quiet 2-core machine (6000 steps), about 55 s when the machine is shared.
"""

import math

import pytest
import torch

from reglab.data import load
from reglab.models import MLP
from reglab.train import Trainer


@pytest.mark.slow
def test_logistic_regression_matches_paper():
    splits = load("mnist1d")
    epochs = math.ceil(6000 / math.ceil(len(splits.train.x) / 100))
    torch.manual_seed(0)
    trainer = Trainer(MLP(40, 10, hidden=()), lr=1e-2, batch_size=100, epochs=epochs, progress="off")
    h = trainer.fit(splits, test=splits.test)
    # Paper: 32 %. Seeded run; the band allows for our 3500-example train split (paper: 4000).
    assert 0.27 <= h.test["accuracy"] <= 0.37, h.test
