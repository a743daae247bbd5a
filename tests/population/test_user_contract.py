"""What a user of Population sees where the Trainer sets the expectation: data forms, History values,
the template's settings, refusals up front, and what an interrupted fit leaves."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.models import MLP
from reglab.penalties import L2, attach
from reglab.population import Population
from reglab.population._shard import Shard
from reglab.targets import LabelSmoothing
from reglab.train.trainer import NON_FINITE_WEIGHTS, Trainer


def blobs(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 6, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return centers[y] + torch.randn(n, 6, generator=g), y


def template(**kw):
    return MLP(6, 3, hidden=(8,), **kw)


def test_history_logs_the_configured_lr_as_the_trainer_does_also_for_a_diverged_member():
    x, y = blobs()
    x[:, 0] *= 1e6  # lr 1e30 turns the loss non-finite in the first epoch
    configs = [{"lr": 1e-3, "seed": 0}, {"lr": 1e30, "seed": 0}]
    pop = Population(template(), configs, optimizer="sgd")  # float32: 1e-3 is 0.0010000000474974513 there
    histories = pop.fit((x, y), (x, y), epochs=2, batch_size=16, progress="off")
    assert pop.status == ["finished", "diverged"]
    for cfg, got in zip(configs, histories):
        torch.manual_seed(0)
        want = Trainer(template(), optimizer="sgd", lr=cfg["lr"], epochs=2, batch_size=16,
                       progress="off").fit((x, y), val=(x, y))
        assert [r["lr"] for r in got.rows] == [r["lr"] for r in want.rows] == [cfg["lr"]] * len(want)
        assert got.stop_reason == want.stop_reason
        frame, reference = got.to_pandas(), want.to_pandas()
        assert list(frame.columns) == list(reference.columns)
        assert frame.dtypes.to_dict() == reference.dtypes.to_dict()


def test_numpy_arrays_and_a_tensor_dataset_train_as_the_tensors_do():
    x, y = blobs()
    configs = [{"seed": 0, "lr": 1e-2}, {"seed": 1, "dropout": 0.2}]
    want = Population(template(), configs).fit((x, y), (x, y), epochs=2, batch_size=16, progress="off")
    for train in ((x.numpy(), y.numpy()), TensorDataset(x, y)):
        pop = Population(template(), configs)
        got = pop.fit(train, (x.numpy(), y.numpy()), epochs=2, batch_size=16, progress="off")
        assert all(g.equals(w, ignore=("time",)) for g, w in zip(got, want))
        assert pop.evaluate((x.numpy(), y.numpy())) == pop.evaluate((x, y))


def test_a_data_loader_or_a_bad_pair_is_refused_naming_the_method():
    x, y = blobs()
    pop = Population(template(), [{}])
    with pytest.raises(InvalidParameterError) as info:
        pop.fit(DataLoader(TensorDataset(x, y)), epochs=1, progress="off")
    assert str(info.value) == (
        "The 'train' parameter of Population.fit must be a TensorSplit or an (x, y) pair of tensors or "
        "arrays (the population engine indexes its data as tensors: pass (x, y) rather than a Dataset). "
        "Got 'DataLoader' instead."
    )
    with pytest.raises(InvalidParameterError, match=r"^The 'data' parameter of Population.evaluate must be"):
        pop.evaluate((x, y[:5]))


def test_integer_features_are_refused_as_the_trainer_refuses_them():
    x, y = blobs()
    x = x.round().long()
    with pytest.raises(UserError) as trainer:
        Trainer(template(), epochs=1, progress="off").fit((x, y))
    with pytest.raises(UserError) as population:
        Population(template(), [{}]).fit((x, y), epochs=1, progress="off")
    assert str(trainer.value).startswith("Trainer.fit: train x has dtype torch.int64")
    assert str(population.value) == "Population" + str(trainer.value).removeprefix("Trainer")


@pytest.mark.parametrize(
    "y,advice",
    [
        (torch.tensor([0.0, 1.0, 2.0, 1.0]), "these are whole numbers: pass y.long() for class indices."),
        (torch.eye(3)[[0, 1, 2, 1]], "for one-hot or soft targets pass y.argmax(1)"),
        (torch.tensor([0.5, 1.0, 2.0, 1.0]), "train regression models with reglab.Trainer."),
    ],
)
def test_float_targets_are_refused_with_what_to_do(y, advice):
    with pytest.raises(UserError) as info:
        Population(template(), [{}]).fit((torch.randn(4, 6), y), epochs=1, progress="off")
    given = f"(float32 y of shape {tuple(y.shape)}); "
    assert str(info.value).startswith(f"Population.fit: train has float targets {given}")
    assert advice in str(info.value) and "\n" not in str(info.value)


def test_a_template_with_dropout_is_refused_since_each_member_has_its_own_rate():
    with pytest.raises(InvalidParameterError) as info:
        Population(template(dropout=0.2), [{"lr": 1e-3}])
    assert str(info.value) == (
        "The 'arch' parameter of Population must be a template with dropout=0 (each member's rate is its "
        "config's 'dropout'). Got 'MLP with dropout=0.2' instead."
    )


class _ScaledInputs(MLP):
    def forward(self, x):
        return super().forward(100 * x)


def _replaced_head():
    model = template()
    model.out = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Softmax(1))
    return model


def _weight_normed():
    model = template()
    torch.nn.utils.parametrizations.weight_norm(model.out)
    return model


@pytest.mark.parametrize(
    "build,got",
    [
        (lambda: _ScaledInputs(6, 3, hidden=(8,)), "'_ScaledInputs, a subclass of MLP'"),
        (_replaced_head, "'MLP with out: Sequential where MLP(...) has Linear'"),
        (_weight_normed, "'MLP with out: ParametrizedLinear where MLP(...) has Linear'"),
    ],
    ids=["subclass", "replaced-layer", "parametrized"],
)
def test_a_template_that_is_not_the_plain_architecture_is_refused_not_trained_as_one(build, got):
    """Members are built as MLP(...) / CNN1D(...) from the template's settings: a subclass's code or a
    changed layer would be silently left out of every member."""
    with pytest.raises(InvalidParameterError) as info:
        Population(build(), [{}])
    message = str(info.value)
    assert message.startswith("The 'arch' parameter of Population must be a reglab.models.MLP or CNN1D")
    assert message.endswith(f"Got {got} instead.") and "\n" not in message


def test_a_template_with_an_attached_penalty_is_refused_since_the_trainer_would_apply_it():
    x, y = blobs()
    torch.manual_seed(0)
    model = template().double()
    attach(model.hidden[0].linear, L2(1.0))
    with pytest.raises(InvalidParameterError) as info:
        Population(model, [{"lr": 1e-2}], dtype=torch.float64)
    assert str(info.value) == (
        "The 'arch' parameter of Population must be a template without attached penalties (each member's "
        "is its config's 'l1' / 'l2'). Got 'MLP with L2(1.0) attached to hidden.0.linear' instead."
    )
    # What the population would have trained: the Trainer applies the attached penalty, so a member
    # built from this template without it is not the model the user set up.
    plain = template().double()
    plain.load_state_dict(model.state_dict())
    for m in (model, plain):
        Trainer(m, lr=1e-2, epochs=1, batch_size=16, progress="off").fit((x.double(), y))
    assert not torch.allclose(model.hidden[0].linear.weight, plain.hidden[0].linear.weight)


def test_the_population_takes_the_templates_dtype_unless_told_as_the_trainer_does():
    x, y = blobs()
    torch.manual_seed(0)
    model = template().double()
    pop = Population(model, [{"seed": 0}])
    assert pop.dtype == torch.float64
    got = pop.fit((x, y), epochs=2, batch_size=16, progress="off")[0]
    torch.manual_seed(0)
    want = Trainer(model, epochs=2, batch_size=16, progress="off").fit((x, y))  # trains in float64
    assert next(pop.member(0).parameters()).dtype == torch.float64
    assert got.rows[-1]["train_loss"] == pytest.approx(want.rows[-1]["train_loss"], abs=1e-12)
    assert Population(model, [{}], dtype=torch.float32).dtype == torch.float32


def test_float16_adam_needs_an_eps_that_survives_the_second_moments_underflow():
    with pytest.raises(InvalidParameterError) as info:
        Population(template(), [{}], dtype=torch.float16)
    assert str(info.value) == (
        "The 'eps' parameter of Population must be >= 1e-4 with dtype=torch.float16 and optimizer='adam' "
        "(or use torch.bfloat16). Got 1e-08 instead."
    )
    # What the default did: a float16 second moment underflows to 0, m / eps steps the weights away.
    x, y = blobs(256)
    configs = [{"seed": s, "lr": 1e-2} for s in range(2)]
    pop = Population(template(), configs, dtype=torch.float16, eps=1e-4)
    histories = pop.fit((x, y), epochs=3, batch_size=16, progress="off")
    exact = Population(template(), configs, dtype=torch.float32, eps=1e-4)
    reference = exact.fit((x, y), epochs=3, batch_size=16, progress="off")
    assert pop.status == ["finished", "finished"]
    for h, r in zip(histories, reference):
        assert h.rows[-1]["train_loss"] == pytest.approx(r.rows[-1]["train_loss"], abs=0.05)
    Population(template(), [{}], dtype=torch.float16, optimizer="sgd")  # no moments: fine
    Population(template(), [{}], dtype=torch.bfloat16)  # float32's range: fine


@pytest.mark.parametrize(
    "config,dtype,note",
    [
        ({"lr": 1e40}, torch.float32, "lr=1e+40 past the range of torch.float32, 3.4e+38"),
        ({"l2": 1e5}, torch.float16, "l2=100000 past the range of torch.float16, 6.55e+04"),
    ],
)
def test_a_strength_the_dtype_cannot_hold_diverges_that_member_and_says_so(config, dtype, note):
    # The Trainer refuses such an lr at its first step; in a sweep the member diverges (its column is
    # inf) while the others train on, and its stop reason names the value.
    x, y = blobs()
    pop = Population(template(), [{}, config], dtype=dtype, optimizer="sgd")
    histories = pop.fit((x, y), epochs=2, batch_size=16, progress="off")
    assert pop.status == ["finished", "diverged"]
    assert histories[1].stop_reason == (
        f"non-finite training loss (nan) at epoch 0, batch 1 ({note}){NON_FINITE_WEIGHTS}"
    )
    # The lr it trained with: 1e40 is inf in float32 (a study exports it as a non-finite value).
    assert histories[1].rows[-1]["lr"] == (math.inf if "lr" in config else 1e-3)


def test_an_interrupted_fit_keeps_its_finished_epochs_and_says_how_to_go_on(monkeypatch, tmp_path):
    x, y = blobs()
    step, calls = Shard.step, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # in the third epoch (3 batches an epoch)
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Shard, "step", interrupted)
    threads = torch.get_num_threads()
    pop = Population(template(), [{"seed": 0}, {"seed": 1}], threads=1)
    with pytest.raises(KeyboardInterrupt):
        pop.fit((x, y), epochs=5, batch_size=16, checkpoint=tmp_path / "ck.pt", progress="off")
    assert [len(h) for h in pop.histories_] == [2, 2] and pop.status == ["active", "active"]
    assert torch.get_num_threads() == threads
    with pytest.raises(UserError, match=r"also when it was interrupted\).*same checkpoint= to a new one"):
        pop.fit((x, y), epochs=5, batch_size=16, progress="off")
    monkeypatch.setattr(Shard, "step", step)
    resumed = Population(template(), [{"seed": 0}, {"seed": 1}], threads=1)
    got = resumed.fit((x, y), epochs=5, batch_size=16, checkpoint=tmp_path / "ck.pt", progress="off")
    want = Population(template(), [{"seed": 0}, {"seed": 1}], threads=1).fit(
        (x, y), epochs=5, batch_size=16, progress="off")
    assert all(g.equals(w, ignore=("time",)) for g, w in zip(got, want))


def test_member_is_an_eval_mode_copy_in_the_populations_dtype_that_the_user_may_train_or_mutate():
    x, y = blobs()
    pop = Population(template(norm="batch"), [{"seed": 0}, {"seed": 1, "dropout": 0.3}], dtype=torch.float64)
    before = pop.evaluate((x, y))
    untouched = pop.member(1)
    model = pop.member(1)
    assert not model.training and model.dropout == 0.3
    assert {t.dtype for t in model.state_dict().values() if t.is_floating_point()} == {torch.float64}
    with torch.no_grad():
        for t in model.state_dict().values():
            t.add_(1)  # weights and BatchNorm statistics, in place
    assert pop.evaluate((x, y)) == before
    pop.fit((x, y), epochs=1, batch_size=16, progress="off")
    after, model = pop.evaluate((x, y)), pop.member(1)
    assert after != before and not model.training
    with torch.no_grad():
        logits = model(x.double())
    assert after[1]["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), abs=1e-12)
    model.train()  # the user trains the copy on: the population's weights stay
    torch.nn.functional.cross_entropy(model(x.double()), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(p.grad)
    assert pop.evaluate((x, y)) == after
    fresh = Population(template(norm="batch"), [{"seed": 0}, {"seed": 1}], dtype=torch.float64).member(1)
    pairs = zip(untouched.state_dict().values(), fresh.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)  # the copy taken before fit is the initialization


def test_label_smoothing_smooths_the_training_loss_only_as_the_trainers_label_smoothing_augment():
    """train_loss is the smoothed loss; val_loss and evaluate are plain cross-entropy (one scale for all
    members), as the Trainer logs them with augment=LabelSmoothing."""
    x, y = blobs()
    xv, yv = blobs(24, seed=1)
    config = {"lr": 1e-2, "seed": 3, "label_smoothing": 0.3}
    pop = Population(template(), [config], seed=2, dtype=torch.float64)
    got = pop.fit((x.double(), y), (xv.double(), yv), epochs=2, batch_size=16, progress="off")[0]
    torch.manual_seed(3)
    model = template().double()
    want = Trainer(model, lr=1e-2, augment=LabelSmoothing(0.3, 3), epochs=2, batch_size=16, seed=2,
                   progress="off").fit((x.double(), y), val=(xv.double(), yv))
    for a, b in zip(got.rows, want.rows, strict=True):
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-12), key
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(model.eval()(xv.double()), yv).item()
    assert pop.evaluate((xv.double(), yv))[0]["loss"] == pytest.approx(plain, abs=1e-12)
    assert got.rows[-1]["val_loss"] == pytest.approx(plain, abs=1e-12)


def test_a_regression_targets_whole_numbers_are_sent_to_the_trainer_not_told_to_be_classes():
    """diabetes' targets are whole-number scores (25..346): the refusal said "pass y.long() for class
    indices", which would make ~200 classes; past reglab.data's 50-class limit they read as regression."""
    from reglab import data

    splits = data.load("diabetes")
    with pytest.raises(UserError) as info:
        Population(MLP(10, 2, hidden=[]), [{}]).fit(splits, epochs=1, progress="off")
    message = str(info.value)
    assert message.endswith("train regression models with reglab.Trainer.") and "y.long()" not in message
    assert f"{len(splits.train.y.unique())} distinct whole numbers" in message
    # 50 distinct whole numbers are still class indices, as reglab.data reads them
    y = torch.arange(50.0)
    with pytest.raises(UserError, match=r"these are whole numbers: pass y.long\(\) for class indices\.$"):
        Population(template(), [{}]).fit((torch.randn(50, 6), y), epochs=1, progress="off")
