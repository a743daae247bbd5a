"""Trainer(augment=[a, b]): a list or tuple of batch transforms is applied in order (augment.Compose)."""

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import Compose, FeatureDropout, FeatureNoise
from reglab.models import MLP
from reglab.train import Trainer, fit

D = torch.float64


def _data(n=40):
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0), dtype=D)
    return x, (x[:, 0] > 0).long()


def _mlp():
    torch.manual_seed(0)
    return MLP(4, 2, hidden=(8,)).double()


def _history(augment, **kw):
    return fit(_mlp(), _data(), augment=augment, epochs=3, batch_size=16, seed=2, progress="off", **kw)


def test_a_list_is_applied_in_order_with_the_one_transform_generator():
    x, y = _data(8)
    seen = []

    def plus_one(xb, yb, *, generator):
        seen.append(("plus_one", xb.clone(), generator))
        return xb + 1, yb

    def doubled(xb, yb, *, generator):
        seen.append(("doubled", xb.clone(), generator))
        return xb * 2, yb

    def recorded(xb, yb, *, generator):
        seen.append(("recorded", xb.clone(), generator))
        return xb, yb

    trainer = Trainer(_mlp(), augment=[plus_one, doubled, recorded], epochs=1, batch_size=8, progress="off")
    trainer.fit((x, y))
    assert [name for name, _, _ in seen] == ["plus_one", "doubled", "recorded"]
    batch = seen[0][1]  # the permuted batch, before any transform
    torch.testing.assert_close(seen[2][1], (batch + 1) * 2, rtol=0, atol=0)
    assert seen[0][2] is seen[1][2] is seen[2][2] is trainer._transform_gen
    assert isinstance(trainer.augment, Compose) and len(trainer.augment) == 3


@pytest.mark.parametrize("kind", [list, tuple])
def test_a_list_trains_as_its_compose_and_as_the_transforms_called_by_hand(kind):
    noise, drop = FeatureNoise(0.3), FeatureDropout(0.2)

    def by_hand(xb, yb, *, generator):
        xb, yb = noise(xb, yb, generator=generator)
        return drop(xb, yb, generator=generator)

    listed = _history(kind([noise, drop]))
    assert listed.equals(_history(Compose([noise, drop]))) and listed.equals(_history(by_hand))
    assert not listed.equals(_history([drop, noise]))  # the order is the list's
    assert not listed.equals(_history(None))


def test_an_empty_list_is_no_augmentation():
    assert Trainer(_mlp(), augment=[]).augment is None
    assert _history([]).equals(_history(None))


def test_a_bad_element_is_one_line_naming_its_index():
    with pytest.raises(InvalidParameterError) as info:
        Trainer(_mlp(), augment=[FeatureNoise(0.1), "feature_dropout"])
    assert str(info.value) == (
        "The 'augment[1]' parameter of Trainer must be a batch transform t(x, y, *, generator) -> (x, y). "
        "Got 'feature_dropout' instead."
    )
    with pytest.raises(InvalidParameterError, match=(
        r"^The 'augment' parameter of Trainer must be None, a batch transform t\(x, y, \*, generator\) -> "
        r"\(x, y\) or a list of them \(applied in order\)\. Got 'feature_noise' instead\.$"
    )):
        fit(_mlp(), _data(), augment="feature_noise")
