"""Trainer(loss=<name>): each name is torch's functional loss, and what "auto" gives where both mean it."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from reglab._validation import InvalidParameterError
from reglab.callbacks import ModelCheckpoint
from reglab.errors import UserError
from reglab.models import MLP
from reglab.train import Trainer, fit
from reglab.train.trainer import LOSSES

D = torch.float64


def _x(n=48, d=4, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=D)


def _mlp(out, seed=0, **kw):
    torch.manual_seed(seed)
    return MLP(4, out, hidden=(8,), **kw).double()


def _history(model, data, val=None, **kw):
    kw = {"epochs": 3, "batch_size": 16, "seed": 3, "lr": 0.05, "progress": "off", **kw}
    return Trainer(model, **kw).fit(data, val)


@pytest.mark.parametrize(
    "name", ["cross_entropy", "sparse_categorical_crossentropy", "categorical_crossentropy"]
)
def test_a_cross_entropy_name_trains_exactly_as_auto_on_class_labels(name):
    x = _x()
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()  # 3 classes
    auto = _history(_mlp(3, dropout=0.2), (x, y), (x, y))
    named = _history(_mlp(3, dropout=0.2), (x, y), (x, y), loss=name)
    assert named.columns == auto.columns and "val_accuracy" in named.columns
    assert named.equals(auto)


@pytest.mark.parametrize("name", ["bce", "binary_crossentropy"])
def test_a_binary_name_trains_exactly_as_auto_on_one_logit(name):
    x = _x()
    y = (x[:, 0] > 0).long()
    assert _history(_mlp(1), (x, y), (x, y), loss=name).equals(_history(_mlp(1), (x, y), (x, y)))


@pytest.mark.parametrize("name", ["mse", "mean_squared_error"])
def test_an_mse_name_trains_exactly_as_auto_on_float_targets(name):
    x = _x()
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=D)
    named = _history(_mlp(1), (x, y), (x, y), loss=name)
    assert {"train_mse", "val_mae"} <= set(named.columns) and "train_accuracy" not in named.columns
    assert named.equals(_history(_mlp(1), (x, y), (x, y)))


REFERENCE = {"mse": F.mse_loss, "mean_squared_error": F.mse_loss, "mae": F.l1_loss, "l1": F.l1_loss,
             "mean_absolute_error": F.l1_loss, "huber": F.huber_loss, "smooth_l1": F.smooth_l1_loss}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_a_regression_name_computes_torchs_loss_and_its_gradient_steps(name):
    """Two SGD steps with the name equal two steps taken by hand with torch's function; evaluate too."""
    x = _x(32)
    y = 2.0 * torch.tanh(x @ torch.tensor([1.0, -2.0, 0.5, 0.3], dtype=D))
    reference = _mlp(1)
    trainer = Trainer(_mlp(1), loss=name, optimizer="sgd", lr=0.1, epochs=2, batch_size=32, progress="off")
    trainer.fit((x, y))
    with torch.no_grad():
        error = (reference(x)[:, 0] - y).abs()
    assert bool((error < 1).any() and (error > 1).any())  # huber's quadratic and linear parts both used
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(2):  # one batch an epoch: the whole set, in the permuted order
        loss = REFERENCE[name](reference(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for ours, theirs in zip(trainer.model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        expected = float(REFERENCE[name](reference(x)[:, 0], y))
    assert trainer.evaluate((x, y))["loss"] == pytest.approx(expected, rel=1e-12)


def test_a_regression_name_makes_integer_targets_a_regression():
    """"auto" reads integer targets as classes; a regression loss's name says they are values."""
    x = _x()
    y = (x[:, 0] > 0).long() * 3  # 0 or 3: counts, say
    trainer = Trainer(_mlp(1), loss="mae", epochs=1, batch_size=48, progress="off")
    history = trainer.fit((x, y))
    assert trainer.task_ == "regression" and "train_mae" in history.columns
    with torch.no_grad():
        expected = float(F.l1_loss(trainer.model(x)[:, 0], y.to(D)))
    assert trainer.evaluate((x, y))["loss"] == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_takes_one_hot_targets_as_classification():
    """"auto" reads float (N, C) targets as regression (MSE); the name is cross-entropy on them."""
    x = _x()
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    one_hot = F.one_hot(labels, 3).to(D)
    trainer = Trainer(_mlp(3), loss="categorical_crossentropy", epochs=2, batch_size=16, progress="off")
    history = trainer.fit((x, one_hot))
    assert trainer.task_ == "classification" and "train_accuracy" in history.columns
    with torch.no_grad():
        logits = trainer.model(x)
    result = trainer.evaluate((x, one_hot))
    assert result["loss"] == pytest.approx(float(F.cross_entropy(logits, one_hot)), rel=1e-12)
    assert result["accuracy"] == pytest.approx(float((logits.argmax(1) == labels).double().mean()))


def test_fit_takes_a_loss_name_as_the_trainer_does():
    x = _x()
    y = x[:, 0] - x[:, 1]
    h = fit(_mlp(1), (x, y), loss="huber", epochs=2, batch_size=16, seed=1, progress="off")
    t = Trainer(_mlp(1), loss="huber", epochs=2, batch_size=16, seed=1, progress="off").fit((x, y))
    assert h.equals(t) and not h.equals(fit(_mlp(1), (x, y), epochs=2, batch_size=16, seed=1, progress="off"))


def test_an_unknown_loss_name_is_one_line_naming_the_field_the_value_and_the_names():
    with pytest.raises(InvalidParameterError) as info:
        Trainer(_mlp(1), loss="MSE")
    listed = ", ".join(repr(n) for n in ("auto", *LOSSES))
    assert str(info.value) == (
        f"The 'loss' parameter of Trainer must be one of {listed} or a callable loss(output, target). "
        "Got 'MSE' instead. Did you mean 'mse'?"
    )
    with pytest.raises(
        InvalidParameterError, match=r"'cross_entropyy' instead\. Did you mean 'cross_entropy'\?"
    ):
        Trainer(_mlp(1), loss="cross_entropyy")
    with pytest.raises(InvalidParameterError, match=r"'loss' parameter of Trainer .* Got 3 instead\.$"):
        Trainer(_mlp(1), loss=3)


def test_a_task_that_contradicts_the_named_loss_is_refused():
    with pytest.raises(InvalidParameterError, match=(
        r"^The 'task' parameter of Trainer must be 'auto' or 'regression' with loss='mse'\. "
        r"Got 'classification' instead\.$"
    )):
        Trainer(_mlp(1), loss="mse", task="classification")
    with pytest.raises(InvalidParameterError, match=r"'auto' or 'classification' with loss='bce'"):
        Trainer(_mlp(1), loss="bce", task="regression")
    assert Trainer(_mlp(1), loss="mae", task="regression").task == "regression"


def test_a_classification_name_with_the_wrong_output_count_is_one_line_before_any_step():
    x = _x()
    y = (x[:, 0] > 0).long()
    model = _mlp(1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(UserError, match=r"loss='cross_entropy' needs one output per class.*use loss='bce'"):
        Trainer(model, loss="cross_entropy", epochs=1, progress="off").fit((x, y))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(UserError, match=(
        r"loss='binary_crossentropy' takes one output column .* got outputs \(32, 2\) and labels \(32,\)\. "
        r"Use loss='cross_entropy'"
    )):
        Trainer(_mlp(2), loss="binary_crossentropy", epochs=1, progress="off").fit((x, y))


def test_a_named_loss_gets_the_label_checks_a_callable_is_spared():
    x = _x()
    y = torch.arange(48) % 5  # labels 0..4 for 3 outputs
    with pytest.raises(UserError, match=r"train y has labels 0\.\.4; expected class indices 0\.\.2"):
        Trainer(_mlp(3), loss="cross_entropy", epochs=1, progress="off").fit((x, y))
    yr = x[:, :2].sum(1, keepdim=True).expand(48, 2)  # two regression targets for a one-output MLP
    with pytest.raises(UserError, match=(
        r"train y holds 2 regression targets an example \(y of shape \(48, 2\), trained with loss='huber'\), "
        r"but the MLP has 1 output; match the model's outputs to the targets\.$"
    )):
        Trainer(_mlp(1), loss="huber", epochs=1, progress="off").fit((x, yr))


def test_resuming_with_another_loss_is_refused_and_an_alias_resumes(tmp_path):
    x = _x()
    y = x[:, 0] - x[:, 1]

    def run(loss, folder, resume=None):
        checkpoint = ModelCheckpoint(tmp_path / folder, monitor="train_loss")
        return Trainer(_mlp(1), loss=loss, epochs=2, progress="off", callbacks=[checkpoint]).fit(
            (x, y), resume_from=resume)

    run("mse", "a")
    last = tmp_path / "a" / "last.pt"
    with pytest.raises(UserError, match=r"was written with loss='mse'; this trainer has loss='mae'"):
        run("mae", "b", last)
    assert len(run("mean_squared_error", "c", last)) == 2


def test_a_callable_loss_still_reads_its_labels_its_own_way():
    x = _x()
    y = torch.arange(48) % 5  # past the 3 outputs: a callable may map them itself

    def folded(out, target):
        return nn.functional.cross_entropy(out, target % 3)

    history = Trainer(_mlp(3), loss=folded, epochs=1, progress="off").fit((x, y))
    assert len(history) == 1


def test_auto_reads_one_hot_and_soft_float_targets_as_classification_as_documented():
    """loss='auto' trained float one-hot / soft targets as regression (MSE), where the README promised
    cross-entropy; rows that are not probabilities (several regression outputs) stay regression."""
    x, labels = _x(), torch.randint(0, 3, (48,), generator=torch.Generator().manual_seed(1))
    onehot = F.one_hot(labels, 3).to(D)
    as_labels = _history(_mlp(3), (x, labels), (x, labels))
    as_onehot = _history(_mlp(3), (x, onehot), (x, onehot))
    for column in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        assert as_onehot[column] == pytest.approx(as_labels[column], rel=1e-12, abs=1e-12), column
    soft = 0.8 * onehot + 0.2 / 3
    model = _mlp(3)
    with torch.no_grad():
        want = F.cross_entropy(model(x), soft).item()  # one batch: the loss logged is before its step
    trainer = Trainer(model, epochs=1, batch_size=48, progress="off")
    history = trainer.fit((x, soft))
    assert trainer.task_ == "classification" and history["train_loss"][0] == pytest.approx(want, rel=1e-12)
    outputs = torch.rand(48, 3, generator=torch.Generator().manual_seed(2), dtype=D)  # rows not summing to 1
    regression = Trainer(_mlp(3), epochs=1, batch_size=16, progress="off")
    regression.fit((x, outputs))
    assert regression.task_ == "regression"
