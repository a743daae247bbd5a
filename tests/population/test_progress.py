"""The population's progress display: one summary per epoch that agrees with the members' histories."""

from __future__ import annotations

import math
import re

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.callbacks.early_stopping import EarlyStopping
from reglab.models import MLP
from reglab.population import Population
from reglab.population._progress import epoch_summary
from reglab.train.history import History
from tests.population.conftest import make_data


def histories(*rows):
    out = []
    for row in rows:
        h = History()
        if row is not None:
            h.append(row)
        out.append(h)
    return out


def test_summary_ranks_by_validation_accuracy_and_reports_the_median_training_loss():
    hs = histories(
        {"epoch": 2, "train_loss": 0.9, "val_accuracy": 0.70},
        {"epoch": 2, "train_loss": 0.3, "val_accuracy": 0.75},
        {"epoch": 2, "train_loss": 0.6, "val_accuracy": 0.80},
    )
    assert epoch_summary(hs, ["active"] * 3, 2) == (
        "active 3/3  best val_accuracy 0.8 (member 2)  median train_loss 0.6"
    )


def test_summary_without_validation_ranks_by_training_loss_and_skips_diverged_and_finished_members():
    hs = histories(
        {"epoch": 4, "train_loss": 0.5},
        {"epoch": 4, "train_loss": math.inf},  # diverged this epoch
        {"epoch": 3, "train_loss": 0.1},  # stopped an epoch earlier: not this epoch's
        {"epoch": 4, "train_loss": 0.7},
        None,
    )
    status = ["active", "diverged", "stopped", "active", "diverged"]
    assert epoch_summary(hs, status, 4) == (
        "active 2/5, stopped 1, diverged 2  best train_loss 0.5 (member 0)  median train_loss 0.6"
    )


def test_fit_prints_one_line_per_epoch_that_matches_the_histories(capsys):
    train, val = make_data(96, 6, 3, seed=1), make_data(48, 6, 3, seed=2)
    configs = [{"lr": lr, "seed": k} for k, lr in enumerate([1e-4, 3e-2, 1e-1, 1e-2])]
    pop = Population(MLP(6, 3, hidden=(16,)), configs, dtype=torch.float64, threads=2)
    es = EarlyStopping("val_loss", patience=1, min_delta=1e9)  # nobody improves by 1e9: all stop at epoch 1
    hs = pop.fit(train, val, epochs=5, batch_size=32, early_stopping=es, progress="plain")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(pop.status[k] == "stopped" for k in range(4))
    for epoch, line in enumerate(lines):
        accuracy = [h.rows[epoch]["val_accuracy"] for h in hs]
        losses = sorted(h.rows[epoch]["train_loss"] for h in hs)
        best = max(range(4), key=accuracy.__getitem__)
        head = "active 4/4" if epoch == 0 else "active 0/4, stopped 4"
        assert line.startswith(
            f"epoch {epoch + 1}/5  {head}  best val_accuracy {accuracy[best]:.4g} (member {best})  "
            f"median train_loss {(losses[1] + losses[2]) / 2:.4g}  ("
        ), line
        assert re.search(r"\(\S+ s\)$", line)


def test_progress_off_prints_nothing_and_a_bad_value_is_refused(capsys):
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    Population(MLP(4, 2, hidden=(8,)), [{}]).fit((x, y), epochs=2, batch_size=8, progress="off")
    assert capsys.readouterr().out == ""
    with pytest.raises(InvalidParameterError, match=r"The 'progress' parameter of Population.fit must be one "
                       r"of 'auto', 'rich', 'plain', 'off'. Got 'loud' instead."):
        Population(MLP(4, 2, hidden=(8,)), [{}]).fit((x, y), epochs=1, progress="loud")
