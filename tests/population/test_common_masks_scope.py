"""dropout_masks="common" shares dropout masks only: input noise stays drawn per member (documented)."""

import torch

from reglab.models import MLP
from reglab.population import Population


def _losses(noise: float) -> list[list[float]]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)
    twins = [{"seed": 0, "dropout": 0.5, "noise": noise, "lr": 0.05}] * 2  # two identical members
    pop = Population(MLP(4, 2, hidden=(16,)), twins, dropout_masks="common", seed=0)
    return [h["train_loss"] for h in pop.fit((x, y), epochs=2, batch_size=16, progress="off")]


def test_common_masks_make_twins_equal_but_input_noise_stays_per_member():
    same_masks = _losses(0.0)
    assert same_masks[0] == same_masks[1]  # one mask draw per step for both: identical runs
    with_noise = _losses(0.5)
    assert with_noise[0][0] != with_noise[1][0]  # each member draws its own noise
