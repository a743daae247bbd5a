"""float16 weights with Adam's eps=1e-8 (0 in float16) are refused before a step; workable setups train."""

import math

import pytest
import torch
from torch.nn import functional as F

from reglab._validation import InvalidParameterError
from reglab.callbacks import Callback
from reglab.models import MLP
from reglab.train import Trainer
from reglab.train.trainer import HALF_MIN_EPS, _eps_too_small

H = torch.float16


def _data():
    x = torch.randn(128, 10, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def _mlp():
    torch.manual_seed(0)
    return MLP(10, 2, hidden=(16,))


def _refusal(optimizer, got):
    return (
        "The 'optimizer' parameter of Trainer must be 'sgd' or a factory with eps >= 1e-4 "
        "(e.g. lambda p: torch.optim.Adam(p, lr=1e-3, eps=1e-4)) for float16 weights, or the weights must "
        f"be bfloat16 or float32 (dtype=torch.bfloat16): with {optimizer}'s eps=1e-08 the float16 second "
        f"moment underflows to 0 and its steps divide by about zero (NaN or exploding weights). Got {got} "
        "instead."
    )


def test_the_failure_is_torchs_own_adam_in_float16():
    """Why it is refused: a plain torch loop with Adam's defaults has NaN weights after its first step."""
    x, y = _data()
    model = _mlp().half()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    F.cross_entropy(model(x.half()), y).backward()
    opt.step()
    assert not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert float(torch.tensor(1e-8, dtype=H)) == 0.0


def test_an_eps_under_1e_4_is_too_small_for_float16():
    assert HALF_MIN_EPS == 1e-4
    assert _eps_too_small(1e-8) and _eps_too_small(1e-7) and _eps_too_small(9.9e-5)
    assert not _eps_too_small(1e-4) and not _eps_too_small(1e-3)
    assert not _eps_too_small(None) and not _eps_too_small((1e-30, 1e-3))  # Adafactor's pair: not an eps


@pytest.mark.parametrize("optimizer, kind", [("adam", "Adam"), ("adamw", "AdamW")])
def test_float16_with_a_named_adam_is_refused_at_construction(optimizer, kind):
    with pytest.raises(InvalidParameterError) as info:
        Trainer(_mlp(), optimizer=optimizer, dtype=H)
    assert str(info.value) == _refusal(kind, repr(optimizer))
    with pytest.raises(InvalidParameterError, match=r"^The 'optimizer' parameter of Trainer"):
        Trainer(_mlp().half(), optimizer=optimizer)  # a float16 model, no dtype=
    assert Trainer(_mlp().half(), optimizer=optimizer, dtype=torch.float32).dtype == torch.float32


def test_a_model_made_float16_after_construction_is_refused_at_fit_before_anything_runs():
    class Started(Callback):
        started = False

        def on_fit_start(self, trainer):
            Started.started = True

    model = _mlp()
    trainer = Trainer(model, callbacks=[Started()], progress="off")
    model.half()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InvalidParameterError, match=r"with Adam's eps=1e-08 the float16 second moment"):
        trainer.fit(_data())
    assert not Started.started and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_factory_whose_eps_is_too_small_for_float16_is_refused_at_fit():
    trainer = Trainer(_mlp(), optimizer=lambda p: torch.optim.RMSprop(p, lr=1e-3), dtype=H, progress="off")
    with pytest.raises(InvalidParameterError) as info:
        trainer.fit(_data())
    assert str(info.value) == _refusal("RMSprop", "a factory of RMSprop")


@pytest.mark.parametrize("setup", [
    {"optimizer": lambda p: torch.optim.Adam(p, lr=1e-2, eps=1e-4), "dtype": H},
    {"optimizer": "sgd", "lr": 0.1, "dtype": H},
    {"optimizer": "adam", "lr": 1e-2, "dtype": torch.bfloat16},
])
def test_the_setups_the_message_points_to_train_without_a_non_finite_loss(setup):
    x, y = _data()
    history = Trainer(_mlp(), epochs=3, batch_size=32, progress="off", **setup).fit((x, y))
    assert history.stop_reason is None and len(history) == 3
    assert all(math.isfinite(v) for v in history["train_loss"])
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_fused_adam_with_its_default_eps_is_refused_too_as_it_blows_up_in_float16():
    """A fused step adds eps in float32, but its second moment is float16 and underflows: torch's own fused
    Adam (lr 1e-3, 50 full-batch steps) grows the weights far past where float32 Adam takes them."""
    x, y = _data()

    def weight_norm(dtype):
        model = _mlp().to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=dtype == H)
        for _ in range(50):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x.to(dtype)).float(), y).backward()
            opt.step()
        return float(torch.cat([p.detach().float().flatten() for p in model.parameters()]).norm())

    assert weight_norm(H) > 2 * weight_norm(torch.float32)
    trainer = Trainer(_mlp(), optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, fused=True), dtype=H,
                      progress="off")
    with pytest.raises(InvalidParameterError) as info:
        trainer.fit((x, y))
    assert str(info.value) == _refusal("Adam", "a factory of Adam")
