"""reglab.targets against torch's label-smoothing loss, exact mixing weights, and the Beta law (KS test)."""

import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from reglab._validation import InvalidParameterError
from reglab.targets import CutMix, LabelSmoothing, Mixup, cutmix, label_smoothing, mixup


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.35, 1.0])
def test_cross_entropy_with_smoothed_targets_equals_torch_label_smoothing(eps):
    torch.manual_seed(0)
    logits, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 5, (16,))
    x, soft = LabelSmoothing(eps, 5)(logits, y)
    assert x is logits
    expected = F.cross_entropy(logits, y, label_smoothing=eps)
    torch.testing.assert_close(F.cross_entropy(logits, soft), expected, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(soft.sum(1), torch.ones(16, dtype=torch.float64), rtol=0, atol=1e-15)


def test_smoothing_soft_targets_matches_torch_on_probabilities():
    torch.manual_seed(1)
    logits = torch.randn(8, 4, dtype=torch.float64)
    probs = torch.softmax(torch.randn(8, 4, dtype=torch.float64), 1)
    ours = F.cross_entropy(logits, label_smoothing(probs, 0.2, 4))
    torch.testing.assert_close(ours, F.cross_entropy(logits, probs, label_smoothing=0.2), rtol=1e-13, atol=0)


def recover_mixup(xm: torch.Tensor):
    """With x = eye(N), row i of the mix is lam at column i and 1 - lam at column perm[i]."""
    n = xm.shape[0]
    lam = torch.diagonal(xm)
    off = xm - torch.diag(lam)
    perm = torch.where(off.abs().sum(1) > 0, off.argmax(1), torch.arange(n))
    mixed_rows = perm != torch.arange(n)
    return lam[mixed_rows], perm


def test_mixup_mixes_inputs_and_targets_with_one_lambda_and_a_permutation():
    n = 10
    x, y = torch.eye(n, dtype=torch.float64), torch.arange(n) % 3
    xm, ym = Mixup(0.4, 3)(x, y, generator=gen(5))
    lams, perm = recover_mixup(xm)
    assert sorted(perm.tolist()) == list(range(n))
    lam = lams[0].item()
    torch.testing.assert_close(lams, torch.full_like(lams, lam), rtol=0, atol=1e-15)  # one lambda per batch
    onehot = F.one_hot(y, 3).double()
    torch.testing.assert_close(ym, lam * onehot + (1 - lam) * onehot[perm], rtol=0, atol=1e-15)
    again = mixup(x, y, 0.4, 3, generator=gen(5))
    assert torch.equal(again[0], xm) and torch.equal(again[1], ym)


def test_mixup_lambda_follows_beta_alpha_alpha():
    # Kolmogorov-Smirnov over 500 seeded draws; a correct sampler fails this with probability 0.001.
    alpha, g, lams = 0.4, gen(11), []
    x, y = torch.eye(6, dtype=torch.float64), torch.arange(6) % 2
    while len(lams) < 500:
        xm, _ = mixup(x, y, alpha, 2, generator=g)
        got, _ = recover_mixup(xm)
        if len(got):
            lams.append(got[0].item())
    assert scipy.stats.kstest(lams, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape", [(6, 3, 8, 10), (6, 2, 40), (6, 40)])
def test_cutmix_pastes_one_box_and_weights_targets_by_its_exact_area(shape):
    n = shape[0]
    ident = torch.arange(1, n + 1, dtype=torch.float64).reshape(n, *([1] * (len(shape) - 1)))
    x = ident.expand(shape).clone()  # every value of sample i is i + 1
    y = torch.arange(n) % 4
    onehot = F.one_hot(y, 4).double()
    areas = []
    for seed in range(5):
        xm, ym = CutMix(1.0, 4)(x, y, generator=gen(seed))
        diff = xm != x
        box = diff.any(0)  # pasted positions (every channel), unless every sample drew itself
        idx = box.nonzero()
        if len(idx):  # the box is a rectangle / segment: its bounding box is full
            lo, hi = idx.min(0).values, idx.max(0).values
            assert box.sum().item() == torch.prod(hi - lo + 1).item()
        area = box.double().mean().item()
        areas.append(area)
        for i in range(n):
            j = i
            if diff[i].any():
                assert torch.equal(diff[i], box)  # the same box in every sample
                src = xm[i][diff[i]].unique()
                assert len(src) == 1  # from one partner
                j = int(src.item()) - 1
            expected = (1 - area) * onehot[i] + area * onehot[j]
            torch.testing.assert_close(ym[i], expected, rtol=0, atol=1e-15)
    assert max(areas) > 0  # the check above saw real boxes


def test_cutmix_reproducible_and_targets_are_probabilities():
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    a, b = cutmix(x, y, 0.5, 10, generator=gen(2)), cutmix(x, y, 0.5, 10, generator=gen(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    torch.testing.assert_close(a[1].sum(1), torch.ones(8))
    assert a[1].dtype == x.dtype


def test_transforms_chain_mixup_then_smoothing():
    x, y = torch.eye(4, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    xm, ym = Mixup(1.0, 4)(x, y, generator=gen())
    _, ys = LabelSmoothing(0.1, 4)(xm, ym)
    torch.testing.assert_close(ys, 0.9 * ym + 0.025)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: Mixup(0, 3),
            "The 'alpha' parameter of Mixup must be a float in the range (0, inf). Got 0.0 instead.",
        ),
        (
            lambda: LabelSmoothing(1.5, 3),
            "The 'eps' parameter of LabelSmoothing must be a float in the range [0, 1]. Got 1.5 instead.",
        ),
        (
            lambda: CutMix(1.0, 1),
            "The 'num_classes' parameter of CutMix must be an int in the range [2, inf). Got 1 instead.",
        ),
        (
            lambda: mixup(torch.zeros(2, 3), torch.tensor([0, 3]), 1.0, 3),
            "The 'y' parameter of mixup must be class indices in [0, 3). Got 3 instead.",
        ),
        (
            lambda: cutmix(torch.zeros(2, 1, 2, 4, 4), torch.tensor([0, 1]), 1.0, 3),
            "The 'x' parameter of cutmix must be a tensor of shape (N, L), (N, C, L) or (N, C, H, W). "
            "Got 'shape (2, 1, 2, 4, 4)' instead.",
        ),
        (
            lambda: mixup(torch.zeros(3, 2), torch.tensor([0, 1]), 1.0, 3),
            "The 'y' parameter of mixup must be one target per sample of x (3). Got 'shape (2,)' instead.",
        ),
        (
            lambda: LabelSmoothing(0.1, 3)(torch.zeros(2), torch.zeros(2, 2)),
            "The 'y' parameter of label_smoothing must be class indices of shape (N,) or probabilities of "
            "shape (N, 3). Got 'torch.float32 tensor of shape (2, 2)' instead.",
        ),
    ],
)
def test_bad_arguments_give_one_line(call, message):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16])
def test_class_indices_of_any_integer_type_give_the_int64_result(dtype):
    x, y = torch.rand(6, 1, 8, 8, dtype=torch.float64), torch.arange(6) % 3
    for transform in (LabelSmoothing(0.1, 3), Mixup(0.4, 3), CutMix(1.0, 3)):
        ref = transform(x, y, generator=gen(2))
        out = transform(x, y.to(dtype), generator=gen(2))
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1]), type(transform).__name__


def test_whole_number_float_labels_are_class_indices_as_in_a_cross_entropy_fit():
    # The Trainer's cross-entropy takes labels 0.0, 1.0, ... (from a CSV or numpy); its soft-target
    # augmentations refused them at the first batch.
    from reglab.train import Trainer

    x, y = torch.rand(6, 1, 8, 8, dtype=torch.float64), torch.arange(6) % 3
    for transform in (LabelSmoothing(0.1, 3), Mixup(0.4, 3), CutMix(1.0, 3)):
        ref = transform(x, y, generator=gen(2))
        out = transform(x, y.double(), generator=gen(2))
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1]), type(transform).__name__

    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(48, 5, generator=g), torch.randint(0, 3, (48,), generator=g)

    def fit(labels):
        torch.manual_seed(0)
        augment = [Mixup(0.4, 3), LabelSmoothing(0.1, 3)]
        trainer = Trainer(torch.nn.Linear(5, 3), optimizer="sgd", lr=0.1, batch_size=16, epochs=2, seed=0,
                          progress="off", loss="cross_entropy", augment=augment)
        return trainer.fit((xs, labels))

    assert fit(ys.float()).equals(fit(ys), ignore=("time",))
    with pytest.raises(InvalidParameterError) as info:
        Mixup(0.4, 3)(torch.zeros(2, 3), torch.tensor([0.0, 0.5]), generator=gen(0))
    assert str(info.value) == ("The 'y' parameter of mixup must be whole-number class indices of shape (N,). "
                               "Got 'torch.float32 labels with the fraction 0.5' instead.")


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_an_infinite_or_nan_float_label_is_one_line_naming_it(bad):
    """An infinite label passed the whole-number check's round() and then indexed an empty tensor."""
    with pytest.raises(InvalidParameterError, match=f"labels with the fraction {bad}"):
        LabelSmoothing(0.1, 3)(torch.zeros(2, 4), torch.tensor([1.0, bad]))
