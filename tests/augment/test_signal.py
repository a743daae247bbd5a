import math

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import AmplitudeScale, Compose, GaussianNoise1d, RandomShift, TimeMask, signal_default


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_circular_shift_is_a_roll_within_range():
    x = torch.randn(400, 2, 12, generator=gen(1), dtype=torch.float64)
    out, y = RandomShift(3)(x, "labels", generator=gen(0))
    assert y == "labels"
    seen = set()
    for row, res in zip(x, out):
        ks = [k for k in range(-3, 4) if torch.equal(torch.roll(row, k, dims=-1), res)]
        assert len(ks) == 1  # one shift, the same for both channels
        seen.add(ks[0])
    assert seen == set(range(-3, 4))  # all 7 shifts occur in 400 draws (P(miss) < 7 * (6/7)**400)


def test_non_circular_shift_zero_fills():
    x = torch.arange(1.0, 9.0).repeat(200, 1)
    out, _ = RandomShift(2, circular=False)(x, None, generator=gen(0))
    for res in out:
        k = int((res == 0).sum()) * (1 if res[0] == 0 else -1)
        expected = torch.zeros(8)
        if k >= 0:
            expected[k:] = x[0, : 8 - k]
        else:
            expected[:k] = x[0, -k:]
        assert torch.equal(res, expected)


def test_amplitude_scale_range_and_mean():
    x = torch.randn(20000, 5, generator=gen(2), dtype=torch.float64)
    out, _ = AmplitudeScale(0.8, 1.2)(x, None, generator=gen(0))
    factors = out / x
    assert torch.allclose(factors, factors[:, :1].expand_as(factors))  # one factor per example
    f = factors[:, 0]
    assert f.min() >= 0.8 and f.max() <= 1.2
    se = 0.4 / math.sqrt(12 * len(f))  # std of U(0.8, 1.2) / sqrt(n)
    assert abs(f.mean().item() - 1.0) < 5 * se


def test_gaussian_noise_std():
    x = torch.zeros(2000, 100, dtype=torch.float64)
    out, _ = GaussianNoise1d(0.05)(x, None, generator=gen(3))
    # std estimate of n = 200000 normals has relative SE 1/sqrt(2n) = 0.16 %; allow 1 %.
    assert out.std().item() == pytest.approx(0.05, rel=0.01)
    assert abs(out.mean().item()) < 5 * 0.05 / math.sqrt(out.numel())


def test_time_mask_contiguous_window():
    x = torch.ones(500, 3, 20)
    out, _ = TimeMask(5)(x, None, generator=gen(4))
    widths = set()
    for res in out:
        assert torch.equal(res[0], res[1]) and torch.equal(res[0], res[2])
        zeros = (res[0] == 0).nonzero().flatten().tolist()
        if zeros:
            assert zeros == list(range(zeros[0], zeros[-1] + 1))
        widths.add(len(zeros))
    assert widths == set(range(6))
    expected = "'max_width' parameter of TimeMask must be at most the signal"
    with pytest.raises(InvalidParameterError, match=expected):
        TimeMask(30)(x, None, generator=gen())


def test_seeded_reproducible_and_composed():
    x = torch.randn(64, 40, generator=gen(5))
    t = signal_default()
    a, _ = t(x, None, generator=gen(7))
    b, _ = t(x, None, generator=gen(7))
    c, _ = t(x, None, generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = gen(7)  # Compose is the same as calling the parts in order with one generator
    manual = x
    for part in (RandomShift(4), AmplitudeScale(0.8, 1.2), GaussianNoise1d(0.05)):
        manual, _ = part(manual, None, generator=g)
    assert torch.equal(a, manual)
    assert len(Compose([])) == 0 and Compose([])(x, 1, generator=g)[0] is x


def test_bad_inputs():
    with pytest.raises(InvalidParameterError, match="'max_shift' parameter of RandomShift must be an int"):
        RandomShift(-1)
    expected = r"'high' parameter of AmplitudeScale must be a float in the range \[1.2, inf\)"
    with pytest.raises(InvalidParameterError, match=expected):
        AmplitudeScale(1.2, 0.8)
    expected = "'x' parameter of RandomShift must be a floating tensor of shape"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomShift(1)(torch.zeros(3, dtype=torch.int64), None, generator=gen())
    expected = "'generator' parameter of GaussianNoise1d must be a torch.Generator"
    with pytest.raises(InvalidParameterError, match=expected):
        GaussianNoise1d(0.1)(torch.zeros(2, 3), None, generator=0)
