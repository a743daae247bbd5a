"""Trainer: data order contract, determinism, losses, regularization hooks, NaN stop, restarts."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from reglab._validation import InvalidParameterError
from reglab.callbacks import Callback, EarlyStopping
from reglab.errors import UserError
from reglab.models import MLP
from reglab.penalties import L1, L2
from reglab.train import TRANSFORM_SEED_OFFSET, Trainer, fit

D = torch.float64


def _blobs(n=60, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=D)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def _mlp(seed=0, **kw):
    torch.manual_seed(seed)
    return MLP(4, 2, hidden=(8,), **kw).double()


class Recorder(Callback):
    def __init__(self):
        self.batches = []

    def on_batch_end(self, trainer, batch, logs):
        self.batches.append(logs["size"])


def test_data_order_follows_the_documented_randperm_contract():
    x, y = _blobs(23)
    idx = torch.arange(23, dtype=D)[:, None].expand(23, 4).clone()  # features carry the row index
    seen = []

    def spy(xb, yb, *, generator):
        seen.append(xb[:, 0].long().tolist())
        return xb, yb

    Trainer(_mlp(), epochs=3, batch_size=5, seed=7, augment=spy, progress="off").fit((idx, y))
    g = torch.Generator().manual_seed(7)
    expected = []
    for _ in range(3):
        perm = torch.randperm(23, generator=g)
        expected += [perm[k : k + 5].tolist() for k in range(0, 23, 5)]  # last partial batch (3) kept
    assert seen == expected


def test_transform_generator_is_seeded_separately():
    x, y = _blobs(10)
    draws = []

    def spy(xb, yb, *, generator):
        draws.append(torch.rand(1, generator=generator).item())
        return xb, yb

    Trainer(_mlp(), epochs=1, batch_size=10, seed=3, augment=spy, progress="off").fit((x, y))
    assert draws == [torch.rand(1, generator=torch.Generator().manual_seed(3 + TRANSFORM_SEED_OFFSET)).item()]


def test_same_seed_same_history_and_user_rng_untouched():
    x, y = _blobs()
    runs = []
    for _ in range(2):
        trainer = Trainer(_mlp(dropout=0.3), epochs=4, batch_size=16, seed=5, progress="off")
        torch.manual_seed(123)
        before = torch.get_rng_state()
        runs.append(trainer.fit((x, y), (x, y)))
        assert torch.equal(torch.get_rng_state(), before)
    assert runs[0].equals(runs[1])
    other = Trainer(_mlp(dropout=0.3), epochs=4, batch_size=16, seed=6, progress="off").fit((x, y), (x, y))
    assert not runs[0].equals(other)


def test_dataset_and_tensors_give_identical_history():
    x, y = _blobs()
    h1 = Trainer(_mlp(), epochs=3, batch_size=16, progress="off").fit((x, y))
    h2 = Trainer(_mlp(), epochs=3, batch_size=16, progress="off").fit(TensorDataset(x, y))
    assert h1.equals(h2)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    h3 = Trainer(_mlp(), epochs=2, batch_size=16, progress="off").fit(loader)
    assert len(h3) == 2


def test_one_full_batch_sgd_step_equals_hand_computation_with_penalty():
    x, y = _blobs(20)
    model = _mlp()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    penalty = L2(0.01)
    Trainer(model, optimizer="sgd", lr=0.1, penalty=penalty, epochs=1, batch_size=20, progress="off").fit(
        (x, y)
    )
    ref = _mlp()
    ref.load_state_dict(start)
    loss = nn.functional.cross_entropy(ref(x), y) + penalty(ref)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    for (name, p), g in zip(ref.named_parameters(), grads):
        torch.testing.assert_close(model.state_dict()[name], p.detach() - 0.1 * g, rtol=0, atol=1e-14)


def test_weight_decay_skips_biases_and_history_columns():
    x, y = _blobs()
    trainer = Trainer(_mlp(), weight_decay=0.1, epochs=2, progress="off")
    h = trainer.fit((x, y), val=(x, y))
    decays = {n: g["weight_decay"] for g in trainer.optimizer_.param_groups for n in g["names"]}
    assert decays == {
        "hidden.0.linear.weight": 0.1,
        "out.weight": 0.1,
        "hidden.0.linear.bias": 0.0,
        "out.bias": 0.0,
    }
    assert h.columns == [
        "epoch",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "penalty",
        "lr",
        "weight_norm",
        "zero_fraction",
        "time",
    ]
    w = torch.cat([trainer.model.hidden[0].linear.weight.flatten(), trainer.model.out.weight.flatten()])
    assert h["weight_norm"][-1] == pytest.approx(float(w.detach().norm()), rel=1e-12)


def test_proximal_l1_gives_exact_zeros():
    x, y = _blobs(80)
    trainer = Trainer(
        _mlp(), optimizer="sgd", lr=0.1, penalty=L1(0.05), proximal=True, epochs=20, progress="off"
    )
    h = trainer.fit((x, y))
    assert h["zero_fraction"][-1] > 0.3
    # Logged at the end-of-epoch weights also when the penalty acts through its proximal step.
    weights = [p for p in trainer.model.parameters() if p.ndim >= 2]
    want = 0.05 * sum(float(w.detach().abs().sum()) for w in weights)
    assert h["penalty"][-1] == pytest.approx(want, rel=1e-6)
    assert h["penalty"][-1] > 0


def test_constraints_clip_scheduler_and_augment_hooks():
    x, y = _blobs(40)
    norms, aug_calls = [], []

    def clamp(model):
        for p in model.parameters():
            p.clamp_(-0.05, 0.05)

    def clip(params):
        total = torch.nn.utils.clip_grad_norm_(list(params), 1.0)
        norms.append(float(total))
        return float(total)

    def augment(xb, yb, *, generator):
        aug_calls.append(len(xb))
        return xb, yb

    trainer = Trainer(
        _mlp(),
        optimizer="sgd",
        lr=0.4,
        constraints=[clamp],
        clip=clip,
        augment=augment,
        epochs=3,
        batch_size=16,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        progress="off",
    )
    h = trainer.fit((x, y), val=(x, y))
    assert all(float(p.detach().abs().max()) <= 0.05 for p in trainer.model.parameters())
    assert len(norms) == 9 and aug_calls == [16, 16, 8] * 3  # training batches only, not validation
    assert h["lr"] == pytest.approx([0.4, 0.2, 0.1])


def test_evaluate_uses_eval_mode_and_predict_matches():
    x, y = _blobs()
    trainer = Trainer(_mlp(dropout=0.5), epochs=1, progress="off")
    trainer.fit((x, y))
    a, b = trainer.evaluate((x, y)), trainer.evaluate((x, y))
    assert a == b and trainer.model.training  # mode restored
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(x)
    assert a["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-12)
    assert a["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    torch.testing.assert_close(trainer.predict(x), logits)


def test_predict_keeps_integer_inputs_as_fit_does_and_takes_zero_rows():
    # predict cast token ids to float (an Embedding refused them after fit had trained on them), and
    # zero rows ended in torch.cat's "expected a non-empty list of Tensors".
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    x, y = torch.randint(0, 10, (40, 3)), torch.randint(0, 2, (40,))
    trainer = Trainer(model, epochs=1, batch_size=16, progress="off")
    trainer.fit((x, y))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(trainer.predict(x), model(x))
        assert trainer.predict(x[:0]).shape == (0, 2)
        empty = Trainer(_mlp(), progress="off").predict(torch.randn(0, 4))  # float32 in, float64 model
    assert empty.shape == (0, 2) and empty.dtype == torch.float64


def test_non_finite_loss_stops_with_reason():
    x, y = _blobs()
    calls = []

    def exploding(out, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, target)
        return loss * math.inf if len(calls) == 6 else loss

    trainer = Trainer(_mlp(), loss=exploding, epochs=10, batch_size=20, progress="off")
    h = trainer.fit((x, y))
    assert h.stop_reason == "non-finite training loss (inf) at epoch 1, batch 2"
    assert len(h) == 2 and math.isinf(h["train_loss"][-1])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_early_stopping_callback_stops_the_trainer_and_restores_best():
    x, y = _blobs(60)
    xv, yv = _blobs(30, seed=1)
    es = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    trainer = Trainer(_mlp(), lr=0.3, epochs=60, batch_size=8, callbacks=[es], progress="off")
    h = trainer.fit((x, y), (xv, yv))
    assert h.stop_reason.startswith("EarlyStopping") and len(h) < 60
    assert h.best_epoch == es.best_epoch
    assert trainer.evaluate((xv, yv))["loss"] == pytest.approx(h.best("val_loss")["val_loss"], rel=1e-12)


def test_restarts_keep_the_best_and_log_each():
    x, y = _blobs(60)
    xv, yv = _blobs(30, seed=1)
    trainer = Trainer(_mlp(), lr=0.05, epochs=3, restarts=3, progress="off")
    h = trainer.fit((x, y), (xv, yv))
    scores = [r["score"] for r in h.restarts]
    assert [r["seed"] for r in h.restarts] == [0, 1, 2] and len(set(scores)) == 3
    best = int(np.argmin(scores))
    assert [r["chosen"] for r in h.restarts] == [i == best for i in range(3)]
    assert trainer.evaluate((xv, yv))["loss"] == scores[best]
    assert h["val_loss"][-1] == scores[best]  # the returned History is the chosen run's


class FirstEpochWeights(Callback):
    """The model's weights at the start of each restart (epoch 0)."""

    def __init__(self):
        self.states = []

    def on_epoch_start(self, trainer, epoch):
        if epoch == 0:
            self.states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def test_restarts_draw_the_init_scheme_with_their_own_seed():
    """Restart r > 0 = reset_parameters under manual_seed(seed + r), then initialize(scheme, seed + r)."""
    from reglab.init import initialize

    x, y = _blobs(60)
    seen = FirstEpochWeights()
    model = _mlp()
    initialize(model, "orthogonal", generator=torch.Generator().manual_seed(5))  # restart 0: the caller's
    Trainer(model, lr=0.05, epochs=2, restarts=2, init="orthogonal", seed=5, callbacks=[seen],
            progress="off").fit((x, y), (x, y))
    want = _mlp()
    with torch.random.fork_rng():
        torch.manual_seed(6)
        for module in want.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    initialize(want, "orthogonal", generator=torch.Generator().manual_seed(6))
    assert len(seen.states) == 2
    for name, value in want.state_dict().items():
        assert torch.equal(seen.states[1][name], value), name
    w = seen.states[1]["hidden.0.linear.weight"]  # orthogonal rows: W W^T = I (8 x 4: the columns)
    torch.testing.assert_close(w.T @ w, torch.eye(4, dtype=w.dtype), atol=1e-12, rtol=0)
    with pytest.raises(InvalidParameterError, match=r"'init' parameter of Trainer must be one of"):
        Trainer(_mlp(), init="glorious")


def test_regression_beats_the_mean_and_reaches_least_squares():
    data = load_diabetes()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    y = (data.target - data.target.mean()) / data.target.std()
    ols = LinearRegression().fit(x, y)
    ols_mse = float(np.mean((ols.predict(x) - y) ** 2))
    torch.manual_seed(0)
    model = MLP(10, 1, hidden=()).double()
    trainer = Trainer(model, lr=0.05, epochs=150, batch_size=442, progress="off")
    h = trainer.fit((torch.tensor(x), torch.tensor(y)))
    assert h.columns[:4] == ["epoch", "train_loss", "train_mse", "train_mae"]
    mse = trainer.evaluate((torch.tensor(x), torch.tensor(y)))["mse"]
    assert mse < 0.6 * 1.0  # predicting the mean of standardized y gives 1.0
    assert mse == pytest.approx(ols_mse, rel=0.01)  # full-batch Adam reaches the closed form


def test_fit_shortcut_and_data_splits():
    from reglab.data import load

    splits = load("diabetes")
    torch.manual_seed(0)
    h = fit(MLP(10, 1, hidden=(16,)), splits, epochs=2, test=splits.test, progress="off")
    assert "val_loss" in h.columns and set(h.test) == {"loss", "mse", "mae"}


def test_argument_errors():
    with pytest.raises(
        InvalidParameterError, match=r"'optimizer' parameter of Trainer must be one of .*Did you mean 'adam'"
    ):
        Trainer(_mlp(), optimizer="adma")
    with pytest.raises(
        InvalidParameterError, match=r"'lr' parameter of Trainer must be a float in the range \(0, inf\)"
    ):
        Trainer(_mlp(), lr=0)
    with pytest.raises(InvalidParameterError, match=r"'decoupled' parameter of Trainer"):
        Trainer(_mlp(), optimizer="sgd", decoupled=True)
    with pytest.raises(
        InvalidParameterError, match=r"'proximal' parameter of Trainer must be False when no penalty"
    ):
        Trainer(_mlp(), proximal=True)
    x, y = _blobs()
    with pytest.raises(
        InvalidParameterError, match=r"'monitor' parameter of Trainer .*Did you mean 'val_accuracy'"
    ):
        Trainer(_mlp(), monitor="val_acuracy", mode="max", progress="off").fit((x, y), (x, y))
    with pytest.raises(InvalidParameterError, match=r"'train' parameter of Trainer must be \(x, y\) tensors"):
        Trainer(_mlp()).fit("data.csv")


@pytest.mark.parametrize("kind", ["elastic net + attached", "callable in the loss"])
def test_penalty_paths_equal_autograd_of_loss_plus_penalty(kind):
    """Reglab penalties go through add_grad_, other callables through the loss: both are that SGD step."""
    from reglab.penalties import ElasticNet, attach, attached

    def build():
        model = _mlp()
        if kind == "elastic net + attached":
            attach(model.out, L1(0.05))
        return model

    if kind == "callable in the loss":
        penalty = lambda m: 0.3 * m.out.weight.pow(4).sum()  # noqa: E731
    else:
        penalty = ElasticNet(l1=0.02, l2=0.01)
    x, y = _blobs(20)
    model = build()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    h = Trainer(model, optimizer="sgd", lr=0.1, penalty=penalty, epochs=1, batch_size=20, progress="off").fit(
        (x, y)
    )
    ref = build()
    ref.load_state_dict(start)
    total = penalty(ref) + attached(ref)
    grads = torch.autograd.grad(nn.functional.cross_entropy(ref(x), y) + total, list(ref.parameters()))
    for (name, p), g in zip(ref.named_parameters(), grads):
        torch.testing.assert_close(model.state_dict()[name], p.detach() - 0.1 * g, rtol=0, atol=1e-14)
    with torch.no_grad():  # logged at the weights of the epoch end: after the step, here
        ref.load_state_dict(model.state_dict())
        after = float(penalty(ref) + attached(ref))
    assert after != pytest.approx(total.item(), rel=1e-6)  # the step changed it: the check tells them apart
    assert h["penalty"][0] == pytest.approx(after, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"lr": 1e39}, {"lr": 1e300, "optimizer": "sgd"}, {"weight_decay": 1e300, "optimizer": "sgd"}],
)
def test_a_rate_too_large_for_the_dtype_is_one_clear_error(kwargs):
    """torch converts lr and weight decay to float32 inside the step: past 3.4e38 it cannot."""
    from reglab.errors import UserError

    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    trainer = Trainer(MLP(4, 3, hidden=(5,)), epochs=1, progress="off", **kwargs)
    with pytest.raises(UserError, match=r"too large for torch.float32 arithmetic .*largest torch.float32 "
                       r"number is 3.4e\+38") as info:
        trainer.fit((x, y))
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidParameterError, match=r"'lr' parameter of Trainer must be a float in the range "
                       r"\(0, inf\). Got inf instead."):
        Trainer(MLP(4, 3, hidden=(5,)), lr=math.inf)


def test_one_callback_or_constraint_passed_bare_is_a_list_of_one():
    from reglab.constraints import MaxNorm

    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    runs = []
    for wrap in (lambda c: c, lambda c: [c]):
        torch.manual_seed(0)
        trainer = Trainer(MLP(4, 3, hidden=(5,)), epochs=6, batch_size=8, progress="off",
                          callbacks=wrap(EarlyStopping("train_loss", patience=1, min_delta=10.0)),
                          constraints=wrap(MaxNorm(0.1)))
        runs.append(trainer.fit((x, y)))
        assert float(trainer.model.hidden[0].linear.weight.detach().norm(dim=1).max()) <= 0.1 + 1e-6
    assert runs[0].equals(runs[1]) and len(runs[0]) == 2  # stopped by the bare EarlyStopping
    with pytest.raises(InvalidParameterError, match=r"'callbacks' parameter of Trainer must be a list of "
                       r"reglab.callbacks.Callback. Got 5 instead."):
        Trainer(MLP(4, 3, hidden=(5,)), callbacks=5)


def test_optimizer_and_scheduler_mistakes_are_one_clear_error():
    from reglab.errors import UserError

    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    bad_factory = Trainer(MLP(4, 3, hidden=(5,)), optimizer=list, epochs=1, progress="off")
    with pytest.raises(UserError, match=r"the optimizer factory returned list, not a torch.optim.Optimizer"):
        bad_factory.fit((x, y))
    plateau = Trainer(MLP(4, 3, hidden=(5,)), epochs=1, progress="off", scheduler_interval="batch",
                      scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(InvalidParameterError, match=r"'scheduler_interval' parameter of Trainer must be"):
        plateau.fit((x, y))
    with pytest.raises(InvalidParameterError, match=r"'scheduler_monitor' parameter of Trainer must be a"):
        Trainer(MLP(4, 3, hidden=(5,)), scheduler_monitor=3)


@pytest.mark.parametrize(
    ("val", "monitor", "message"),
    [(False, "val_loss", r"'zero_fraction' \(this fit has no validation data: pass "
                         r"val to fit to step ReduceLROnPlateau on 'val_loss'\)\. Got 'val_loss' instead\.$"),
     (True, "val_acc", r"'zero_fraction'\. Got 'val_acc' instead\. Did you mean 'val_accuracy'\?$"),
     (True, "time", r"'zero_fraction'\. Got 'time' instead\.$")],
)
def test_a_plateau_scheduler_monitor_the_fit_does_not_log_is_refused_before_any_epoch(val, monitor, message):
    # Refused at the first epoch's end, after that epoch had trained the model (and without validation data
    # the hint was "Did you mean 'train_loss'?").
    x, y = _blobs()
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, epochs=2, progress="off", scheduler_monitor=monitor,
                      scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(InvalidParameterError, match=r"^The 'scheduler_monitor' parameter of Trainer must be "
                       r"one of 'epoch', .*" + message):
        trainer.fit((x, y), (x, y) if val else None)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_batchnorm_skips_a_last_batch_of_one_example_and_refuses_batches_of_one():
    # torch's BatchNorm refuses one value per channel in training ("Expected more than 1 value per channel").
    torch.manual_seed(0)
    x, y = torch.randn(33, 4), torch.randint(0, 3, (33,))
    seen = []

    class Sizes(Callback):
        def on_batch_end(self, trainer, batch, logs):
            seen.append(logs["size"])

    model = MLP(4, 3, hidden=(8,), norm="batch")
    Trainer(model, batch_size=16, epochs=2, progress="off", callbacks=[Sizes()]).fit((x, y))
    assert seen == [16, 16, 16, 16]  # the 33rd example's batch of one is skipped each epoch
    seen.clear()
    Trainer(MLP(4, 3, hidden=(8,)), batch_size=16, epochs=1, progress="off", callbacks=[Sizes()]).fit((x, y))
    assert seen == [16, 16, 1]  # without BatchNorm it is kept
    message = r"^Trainer.fit: the model has BatchNorm, which needs training batches of at least 2 examples; "
    message += "got "
    with pytest.raises(UserError, match=message + "batch_size=1"):
        Trainer(model, batch_size=1, epochs=1, progress="off").fit((x, y))
    with pytest.raises(UserError, match=message + "1 training example"):
        Trainer(model, batch_size=16, epochs=1, progress="off").fit((x[:1], y[:1]))
    loader = DataLoader(TensorDataset(x, y), batch_size=1)
    with pytest.raises(UserError, match=r"every training batch held one example"):
        Trainer(model, epochs=1, progress="off").fit(loader)


def test_settings_the_optimizer_would_not_use_are_refused():
    """Adam's momentum and a factory's lr-independent settings were dropped without a word."""
    model = MLP(4, 2, hidden=(3,))
    adam = r"'momentum' parameter of Trainer must be 0 with optimizer='adam'"
    with pytest.raises(InvalidParameterError, match=adam):
        Trainer(model, momentum=0.9)
    with pytest.raises(InvalidParameterError, match="'momentum' parameter of Trainer must be 0 with"):
        Trainer(model, optimizer="adamw", momentum=0.5)
    factory = lambda params: torch.optim.SGD(params, lr=0.05)  # noqa: E731
    for field, value in (("momentum", 0.9), ("weight_decay", 1e-3), ("decoupled", True)):
        with pytest.raises(InvalidParameterError, match=f"'{field}' parameter of Trainer must be its default "
                                                        "with an optimizer factory"):
            Trainer(model, optimizer=factory, **{field: value})
    Trainer(model, optimizer="sgd", momentum=0.9)  # used: accepted
    Trainer(model, optimizer=factory)


@pytest.mark.parametrize("make", ["mixup", "smoothing"])
def test_soft_targets_wider_than_the_outputs_are_one_line(make):
    """Mixup(num_classes=10) on a 3-output model ended in cross_entropy's 'multi-target not supported'."""
    from reglab import LabelSmoothing, Mixup
    from reglab.errors import UserError

    x, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 3
    augment = Mixup(0.4, num_classes=10) if make == "mixup" else LabelSmoothing(0.1, num_classes=10)
    with pytest.raises(UserError, match="soft targets have 10 columns .* but the model gives 3 outputs"):
        Trainer(MLP(4, 3, hidden=(5,)), augment=augment, epochs=1, progress="off").fit((x, y))
    right = Mixup(0.4, num_classes=3) if make == "mixup" else LabelSmoothing(0.1, num_classes=3)
    Trainer(MLP(4, 3, hidden=(5,)), augment=right, epochs=1, progress="off").fit((x, y))


def test_progress_takes_a_bool_as_study_run_does():
    x, y = torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 2
    assert Trainer(MLP(4, 2, hidden=(3,)), epochs=1, progress=False).progress == "off"
    assert Trainer(MLP(4, 2, hidden=(3,)), epochs=1, progress=True).progress == "auto"
    Trainer(MLP(4, 2, hidden=(3,)), epochs=1, progress=False).fit((x, y))
    with pytest.raises(InvalidParameterError, match="'progress' parameter of Trainer must be one of"):
        Trainer(MLP(4, 2, hidden=(3,)), progress=1)


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [("learning_rate", "reglab calls it 'lr'."), ("validation_data", "reglab calls it 'val'."),
     ("max_epochs", "reglab calls it 'epochs'."), ("batchsize", "Did you mean 'batch_size'?"), ("foo", "")],
)
def test_fit_names_reglabs_spelling_of_an_unknown_keyword(keyword, hint):
    # It raised "Trainer.__init__() got an unexpected keyword argument", naming a call the user never made.
    x, y = _blobs()
    with pytest.raises(TypeError) as err:  # InvalidParameterError is a TypeError, as Python's was
        fit(_mlp(), (x, y), progress="off", **{keyword: 1})
    message = str(err.value)
    assert isinstance(err.value, InvalidParameterError) and "\n" not in message
    assert message.startswith("The 'keyword' parameter of fit must be a Trainer argument or one of test, "
                              f"resume_from. Got {keyword!r} instead.")
    assert message.endswith(hint)


class _VectorRegression(nn.Module):
    """``x @ w + b`` with a 1-D weight: nothing the default selection decays."""

    def __init__(self):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.ones(4, dtype=D)), nn.Parameter(torch.zeros((), dtype=D))

    def forward(self, x):
        return x @ self.w + self.b


def test_weight_decay_on_a_model_with_no_weight_to_decay_is_refused_not_dropped():
    # weight_decay=100 trained exactly as weight_decay=0 (the History's weight_norm read 0.0), silently.
    x = torch.randn(32, 4, dtype=D)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=D)
    model = _VectorRegression()
    with pytest.raises(InvalidParameterError, match=r"^The 'weight_decay' parameter of Trainer must be 0 for "
                       r"a model with no weight to decay .*this model has w \(4,\), b \(\)\).*Got 100\.0 "
                       r"instead\.$"):
        fit(model, (x, y), optimizer="sgd", lr=0.01, weight_decay=100.0, epochs=1, progress="off")
    assert torch.equal(model.w.detach(), torch.ones(4, dtype=D))
    # The factory the message names decays every parameter, as torch's SGD does.
    decayed, plain = _VectorRegression(), _VectorRegression()
    fit(decayed, (x, y), optimizer=lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=1.0), epochs=1,
        progress="off")
    fit(plain, (x, y), optimizer="sgd", lr=0.01, epochs=1, progress="off")
    assert float(decayed.w.detach().norm()) < float(plain.w.detach().norm())


@pytest.mark.parametrize("data", [(torch.tensor(1.0), torch.tensor(0)), (torch.ones(3, 4), torch.tensor(0)),
                                  (torch.tensor(2.0), torch.zeros(3, dtype=torch.long))])
def test_zero_dimensional_x_or_y_is_refused_in_one_line(data):
    """A 0-d x or y reached x.shape[0] and raised IndexError: tuple index out of range."""
    with pytest.raises(InvalidParameterError, match=r"same non-zero number of rows") as err:
        Trainer(MLP(4, 2), epochs=1, progress="off").fit(data)
    assert "\n" not in str(err.value)
