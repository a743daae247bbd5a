"""Population dropout: statistically equal to one-at-a-time training; common random numbers."""

from __future__ import annotations

import math

import pytest
import torch

from reglab.models import MLP
from reglab.population import Population
from reglab.population._dropout import Dropout
from reglab.train.trainer import Trainer
from tests.population.conftest import make_data


@pytest.mark.parametrize("masks", ["independent", "common"])
def test_dropout_population_matches_one_at_a_time_in_distribution(masks):
    """32 paired members (same init and batches), float32, dropout 0.3: paired t on test accuracy < 2."""
    (x, y), (tx, ty) = make_data(300, 10, 3, seed=11), make_data(600, 10, 3, seed=12)
    x, tx = x.float(), tx.float()
    configs = [{"lr": 1e-2, "seed": s, "dropout": 0.3} for s in range(32)]
    pop = Population(MLP(10, 3, hidden=(32, 32)), configs, seed=0, dropout_masks=masks)
    pop.fit((x, y), epochs=4, batch_size=50)
    together = torch.tensor([r["accuracy"] for r in pop.evaluate((tx, ty))])
    alone = []
    for cfg in configs:
        torch.manual_seed(cfg["seed"])
        model = MLP(10, 3, hidden=(32, 32), dropout=0.3)
        trainer = Trainer(model, lr=1e-2, epochs=4, batch_size=50, seed=0, progress="off")
        trainer.fit((x, y))
        alone.append(trainer.evaluate((tx, ty))["accuracy"])
    diff = together - torch.tensor(alone)
    assert diff.abs().sum() > 0  # dropout noise really differs between the two
    t = diff.mean() / (diff.std() / math.sqrt(len(diff)))
    assert abs(t.item()) < 2, (t.item(), diff.mean().item())


def test_common_random_numbers_are_nested_bernoulli_masks():
    """Member k keeps u >= p_k: rate 1 - p_k each, and a unit dropped at p is dropped at every p' > p."""
    p = torch.tensor([0.0, 0.1, 0.5, 0.9]).unsqueeze(1)
    drop = Dropout(p, common=True, common_generator=torch.Generator().manual_seed(0))
    mask = drop(torch.Size([4, 500, 100]))
    kept = mask > 0
    # Binomial(50_000, 1 - p): 5 standard deviations at most 0.0068.
    assert torch.allclose(kept.float().mean((1, 2)), 1 - p[:, 0], atol=0.01)
    assert (kept[1:] <= kept[:-1]).all()  # nested
    assert torch.allclose(mask[2][kept[2]], torch.tensor(2.0))  # scaled by 1 / (1 - p)


def test_independent_masks_are_uncorrelated_between_members():
    p = torch.full((2, 1), 0.5)
    drop = Dropout(p, common=False, generators=[torch.Generator().manual_seed(s) for s in (1, 2)])
    mask = drop(torch.Size([2, 400, 100]))
    a, b = (mask[0] > 0).float().flatten(), (mask[1] > 0).float().flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert abs(corr.item()) < 5 / math.sqrt(a.numel())  # 5 sigma of a null correlation
    assert (
        Dropout(torch.zeros(2, 1), common=False, generators=[torch.Generator()] * 2)(torch.Size([2, 3, 4]))
        is None
    )


def test_independent_masks_drop_at_each_members_rate_for_any_shape():
    """Rates 0.1 / 0.3 / 0.5 per member, on a layer whose size is not a multiple of 4 (16-bit draws)."""
    p = torch.tensor([0.1, 0.3, 0.5]).unsqueeze(1)
    gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    drop = Dropout(p, common=False, generators=gens)
    for shape in (torch.Size([3, 333, 101]), torch.Size([3, 7, 3])):  # 33,633 and 21 units per member
        mask = drop(shape)
        assert mask.shape == shape
        scale = (1 / (1 - torch.round(p.double() * 65536) / 65536)).float().reshape(3, 1, 1)  # rounded rate
        assert ((mask == 0) | (mask == scale)).all()
    n = 333 * 101
    mask = drop(torch.Size([3, 333, 101]))
    dropped = (mask == 0).double().mean((1, 2))
    sigma = (p[:, 0] * (1 - p[:, 0]) / n).sqrt()
    assert ((dropped - p[:, 0]).abs() < 5 * sigma).all(), dropped


def test_mask_is_the_documented_threshold_on_16_bit_uniforms():
    """Member k keeps unit i when its 16-bit draw u_i >= round(65536 p_k), u read from the generator's
    64-bit draws four at a time (checked against the rule computed by hand from a copy of the stream)."""
    p = torch.tensor([[0.25]])
    drop = Dropout(p, common=False, generators=[torch.Generator().manual_seed(7)])
    mask = drop(torch.Size([1, 2, 6]))  # 12 units: three 64-bit draws
    same_stream = torch.Generator().manual_seed(7)
    bits = torch.empty(3, dtype=torch.int64).random_(-(2**63), None, generator=same_stream)
    u = bits.view(torch.int16).long() + 32768  # uniform on [0, 65536)
    assert torch.equal(mask.flatten() > 0, u >= 16384)
    assert torch.equal(mask.flatten()[u >= 16384], torch.full((int((u >= 16384).sum()),), 1 / 0.75))


@pytest.mark.parametrize("p", [0.1, 0.2, 0.9999, 0.99999])
def test_kept_units_are_scaled_by_the_rounded_rate_so_the_mask_mean_is_one(p):
    """A unit is kept with probability 1 - q, q = round(65536 p) / 65536: a kept unit must be worth
    1 / (1 - q), not 1 / (1 - p) (at p = 0.99999 that made the mean 1.43)."""
    q = round(65536 * p) / 65536
    drop = Dropout(torch.tensor([[p]], dtype=torch.float64), common=False,
                   generators=[torch.Generator().manual_seed(0)])
    mask = drop(torch.Size([1, 4000, 1000]))
    kept = mask[mask != 0]
    assert torch.all(kept == 1 / (1 - q))
    # The mean is 1 in expectation: kept count ~ Binomial(n, 1 - q); 5 standard errors.
    n = mask.numel()
    assert abs(float(mask.mean()) - 1) <= 5 * math.sqrt(q / ((1 - q) * n))


def test_rates_that_round_to_one_are_refused():
    from reglab._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"'configs\[0\].dropout' parameter of Population must"):
        Population(MLP(4, 2, hidden=(8,)), [{"dropout": 0.999995}])
    Population(MLP(4, 2, hidden=(8,)), [{"dropout": 0.99999}])
