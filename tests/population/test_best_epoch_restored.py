"""A member's History.best_epoch names the epoch whose weights early stopping restored, as the Trainer's."""

from __future__ import annotations

import pytest
import torch

from reglab.callbacks.early_stopping import EarlyStopping
from reglab.population import Population
from tests.population.conftest import make_data, max_diff
from tests.population.test_population import mlp, trainer_alone


@pytest.mark.parametrize("rule", [{"min_delta": 0.01}, {"start_from_epoch": 3}])
def test_best_epoch_is_the_restored_epoch_as_the_trainer_says(rule):
    train, val = make_data(120, 10, 3, seed=5), make_data(60, 10, 3, seed=6)
    configs = [{"lr": lr, "seed": s} for s, lr in enumerate([3e-3, 1e-3, 3e-4])]

    def stopper():
        return EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True, **rule)

    pop = Population(mlp(), configs, seed=1, dtype=torch.float64)
    histories = pop.fit(train, val, epochs=12, batch_size=30, early_stopping=stopper(), progress="off")
    differs = 0
    for k, cfg in enumerate(configs):
        ref, ref_history = trainer_alone(mlp, cfg, train, val, epochs=12, batch_size=30, optimizer="adam",
                                         seed=1, callbacks=[stopper()])
        assert max_diff(pop.member(k), ref) <= 1e-9
        assert histories[k].best_epoch == ref_history.best_epoch, k
        losses = histories[k]["val_loss"]
        differs += losses.index(min(losses)) != histories[k].best_epoch
    assert differs  # the case the fix is about: the History's lowest val_loss is not the restored epoch
