"""The population engine against training each member alone with reglab.Trainer (float64, exact)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reglab._validation import InvalidParameterError
from reglab.callbacks.early_stopping import EarlyStopping
from reglab.constraints import MaxNorm
from reglab.models import CNN1D, MLP
from reglab.penalties import L1, L2
from reglab.population import Population, train_population
from reglab.population._shard import member_generator
from reglab.train.trainer import Trainer
from tests.population.conftest import make_data, max_diff

HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "lr",
    "weight_norm",
    "zero_fraction",
    "time",
]


def trainer_alone(build, cfg, train, val, *, epochs, batch_size, optimizer, seed, momentum=0.0, **extra):
    """One member trained alone by reglab.Trainer with the same initialization and data order."""
    torch.manual_seed(cfg.get("seed", 0))
    model = build(cfg.get("dropout", 0.0)).to(extra.pop("dtype", torch.float64))
    penalty, proximal = None, False
    if cfg.get("l1"):
        penalty = L1(cfg["l1"])
    if cfg.get("l2"):
        penalty = L2(cfg["l2"])
    if cfg.get("prox_l1"):
        penalty, proximal = L1(cfg["prox_l1"]), True
    decoupled = bool(cfg.get("decoupled_decay"))
    smoothing = cfg.get("label_smoothing", 0.0)
    trainer = Trainer(
        model,
        optimizer=optimizer,
        lr=cfg.get("lr", 1e-3),
        momentum=momentum,
        weight_decay=cfg.get("decoupled_decay") or cfg.get("weight_decay", 0.0),
        decoupled=decoupled,
        penalty=penalty,
        proximal=proximal,
        constraints=[MaxNorm(cfg["max_norm"])] if cfg.get("max_norm") else (),
        loss=(lambda out, t: F.cross_entropy(out, t, label_smoothing=smoothing)) if smoothing else "auto",
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress="off",
        **extra,
    )
    history = trainer.fit(train, val=val)
    return model.eval(), history


def mlp(dropout=0.0):
    return MLP(10, 3, hidden=(16, 16), dropout=dropout)


ADAM_CONFIGS = [
    {"lr": 1e-2, "seed": 0},
    {"lr": 5e-3, "seed": 1, "l2": 1e-3},
    {"lr": 1e-2, "seed": 2, "weight_decay": 1e-2},
    {"lr": 1e-2, "seed": 3, "decoupled_decay": 1e-1},
    {"lr": 1e-2, "seed": 4, "prox_l1": 2e-2},
    {"lr": 2e-2, "seed": 5, "max_norm": 0.8},
]
SGD_CONFIGS = [
    {"lr": 5e-2, "seed": 0},
    {"lr": 5e-2, "seed": 1, "l2": 1e-3},
    {"lr": 1e-1, "seed": 2, "weight_decay": 1e-2},
    {"lr": 5e-2, "seed": 3, "l1": 1e-3},
    {"lr": 5e-2, "seed": 4, "prox_l1": 5e-2},
    {"lr": 1e-1, "seed": 5, "max_norm": 0.8},
]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,configs", [("adam", ADAM_CONFIGS), ("sgd", SGD_CONFIGS)])
def test_every_member_matches_the_trainer_after_800_steps(optimizer, configs):
    """Acceptance: MLP 10-16-16-3, 200 examples, batch 25 -> 8 steps x 100 epochs, float64, <= 1e-9."""
    train, val = make_data(200, 10, 3, seed=0), make_data(100, 10, 3, seed=1)
    momentum = 0.9 if optimizer == "sgd" else 0.0
    pop = Population(mlp(), configs, optimizer=optimizer, momentum=momentum, seed=7, dtype=torch.float64)
    histories = pop.fit(train, val, epochs=100, batch_size=25)
    assert pop.member_steps_ == 800 * len(configs)
    for k, cfg in enumerate(configs):
        ref, ref_history = trainer_alone(
            mlp, cfg, train, val, epochs=100, batch_size=25, optimizer=optimizer, seed=7, momentum=momentum
        )
        assert max_diff(pop.member(k), ref) <= 1e-9, (k, cfg)
        got, want = histories[k].rows[-1], ref_history.rows[-1]
        for column in (
            "train_loss",
            "val_loss",
            "train_accuracy",
            "val_accuracy",
            "weight_norm",
            "zero_fraction",
            "penalty",
        ):
            assert got[column] == pytest.approx(want[column], abs=1e-9), (k, column)
    # The regularizers really acted: exact zeros from the prox step, unit norms capped by max-norm.
    assert histories[4].rows[-1]["zero_fraction"] > 0.05
    capped = torch.linalg.vector_norm(pop.member(5).hidden[0].linear.weight, dim=1)
    assert capped.max().item() == pytest.approx(0.8, abs=1e-6)


def test_history_has_the_trainer_columns_and_member_is_a_plain_model():
    train, val = make_data(60, 10, 3, seed=0), make_data(30, 10, 3, seed=1)
    pop = Population(mlp(), [{"seed": 0, "dropout": 0.25}, {"seed": 1}], dtype=torch.float64)
    histories = pop.fit(train, val, epochs=2, batch_size=16)
    for column in HISTORY_COLUMNS:
        assert column in histories[0].columns
    model = pop.member(0)
    assert isinstance(model, MLP) and model.dropout == 0.25 and not model.training
    scores = pop.evaluate(val)
    with torch.no_grad():
        logits = model(val[0])
    assert scores[0]["loss"] == pytest.approx(F.cross_entropy(logits, val[1]).item(), abs=1e-12)
    assert scores[0]["accuracy"] == pytest.approx((logits.argmax(1) == val[1]).double().mean().item())
    assert histories[0].rows[-1]["val_loss"] == pytest.approx(scores[0]["loss"], abs=1e-12)


def cnn(norm):
    return lambda dropout=0.0: CNN1D(24, 3, channels=4, norm=norm, dropout=dropout)


@pytest.mark.parametrize(
    "build,data_order",
    [
        (lambda d=0.0: MLP(10, 3, hidden=(10, 10), residual=True, norm="layer", dropout=d), "shared"),
        (lambda d=0.0: MLP(10, 3, hidden=(12, 12), norm="batch", dropout=d), "shared"),
        (lambda d=0.0: MLP(10, 3, hidden=(12,), activation="tanh", dropout=d), "per_member"),
        # (Every MLP trains through the hand-written backward, _backprop; the CNNs through autograd.)
        (lambda d=0.0: MLP(10, 3, hidden=(10, 10), residual=True, dropout=d), "shared"),
        (lambda d=0.0: MLP(10, 3, hidden=(12, 8), activation="gelu", dropout=d), "per_member"),
        (cnn(None), "shared"),
        (cnn("batch"), "per_member"),
        (cnn("layer"), "shared"),
    ],
    ids=[
        "mlp-residual-layernorm",
        "mlp-batchnorm",
        "mlp-per-member-order",
        "mlp-residual",
        "mlp-gelu-per-member-order",
        "cnn",
        "cnn-batchnorm",
        "cnn-layernorm",
    ],
)
def test_architectures_match_the_trainer(build, data_order):
    """Weights and BatchNorm running statistics equal training alone (per-member orders use each seed)."""
    features = 24 if build().__class__ is CNN1D else 10
    train, val = make_data(90, features, 3, seed=2), make_data(30, features, 3, seed=3)
    configs = [{"lr": 1e-2, "seed": 3}, {"lr": 3e-3, "seed": 4, "l2": 1e-3, "label_smoothing": 0.1}]
    pop = Population(build(), configs, seed=5, data_order=data_order, dtype=torch.float64)
    pop.fit(train, val, epochs=3, batch_size=20)
    for k, cfg in enumerate(configs):
        seed = cfg["seed"] if data_order == "per_member" else 5
        ref, _ = trainer_alone(build, cfg, train, val, epochs=3, batch_size=20, optimizer="adam", seed=seed)
        # 1e-9, not 1e-15: before BatchNorm a bias's gradient is 0 up to rounding (~1e-17), which Adam's
        # normalization g / (|g| + eps) turns into ~1e-11 updates in both runs, differently.
        assert max_diff(pop.member(k), ref) <= 1e-9, k


def test_input_noise_is_what_each_member_would_draw_alone():
    """Member k adds noise[k] * eps_k, eps_k drawn as (B, F) from member k's own generator."""
    train = make_data(40, 10, 3, seed=4)
    configs = [{"seed": 0, "noise": 0.3, "lr": 1e-2}, {"seed": 1, "lr": 1e-2}]
    pop = Population(mlp(), configs, seed=2, dtype=torch.float64)
    pop.fit(train, epochs=2, batch_size=16)
    for k, cfg in enumerate(configs):
        gen = member_generator(2, k)

        def noise(x, y, *, generator, cfg=cfg, gen=gen):
            if not cfg.get("noise"):  # members without noise draw nothing
                return x, y
            return x + cfg["noise"] * torch.randn(x.shape, generator=gen, dtype=x.dtype), y

        ref, _ = trainer_alone(
            mlp, cfg, train, None, epochs=2, batch_size=16, optimizer="adam", seed=2, augment=noise
        )
        assert max_diff(pop.member(k), ref) <= 1e-12


def test_early_stopping_per_member_matches_the_trainer_and_compacts():
    train, val = make_data(120, 10, 3, seed=5), make_data(60, 10, 3, seed=6)
    configs = [{"lr": lr, "seed": s} for s, lr in enumerate([3e-1, 1e-1, 3e-2, 1e-3])]
    rule = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    pop = Population(mlp(), configs, seed=1, dtype=torch.float64)
    histories = pop.fit(train, val, epochs=30, batch_size=30, early_stopping=rule)
    steps = 4  # 120 / 30
    lengths = []
    for k, cfg in enumerate(configs):
        ref, ref_history = trainer_alone(
            mlp,
            cfg,
            train,
            val,
            epochs=30,
            batch_size=30,
            optimizer="adam",
            seed=1,
            callbacks=[EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)],
        )
        assert len(histories[k]) == len(ref_history)
        assert histories[k].stop_reason == ref_history.stop_reason
        assert max_diff(pop.member(k), ref) <= 1e-9, k
        lengths.append(len(histories[k]))
    assert pop.status.count("stopped") >= 2 and len(set(lengths)) >= 2
    # Compaction: each epoch computes exactly (members still active) x (steps per epoch).
    active = [sum(length > e for length in lengths) for e in range(max(lengths))]
    assert pop.epoch_member_steps_ == [a * steps for a in active]
    assert pop.member_steps_ == steps * sum(lengths) < steps * 30 * len(configs)


def test_diverged_member_is_frozen_and_the_others_go_on():
    train = make_data(100, 10, 3, seed=9)
    configs = [{"lr": 1e-2, "seed": 0}, {"lr": 1e8, "seed": 1}, {"lr": 5e-3, "seed": 2}]
    pop = Population(mlp(), configs, optimizer="sgd", momentum=0.9, dtype=torch.float64)
    histories = pop.fit(train, epochs=5, batch_size=25)
    assert pop.status == ["finished", "diverged", "finished"]
    assert "non-finite training loss" in histories[1].stop_reason
    assert not math.isfinite(histories[1].rows[-1]["train_loss"])
    for k, cfg in enumerate(configs):
        ref, ref_history = trainer_alone(
            mlp, cfg, train, None, epochs=5, batch_size=25, optimizer="sgd", seed=0, momentum=0.9
        )
        assert len(histories[k]) == len(ref_history)
        # Member 1 stops at its last finite weights, which have blown up: compare relative to their size.
        scale = max(p.abs().max().item() for p in ref.parameters())
        assert max_diff(pop.member(k), ref) <= 1e-9 * max(scale, 1.0)
        assert all(torch.isfinite(p).all() for p in pop.member(k).parameters())


@pytest.mark.parametrize("threads", [1, 2])
def test_every_member_of_a_shard_diverging_mid_epoch_matches_the_trainer(threads):
    """The last members of a shard leave after some finite steps of the epoch (its running sums then
    belong to nobody); the population ends with every member diverged, as the Trainer ends each run."""
    train = make_data(100, 10, 3, seed=9)
    configs = [{"lr": 1e60, "seed": 0}, {"lr": 1e100, "seed": 1}]
    pop = Population(mlp(), configs, optimizer="sgd", dtype=torch.float64, threads=threads)
    histories = pop.fit(train, epochs=5, batch_size=10, progress="off")
    assert pop.status == ["diverged", "diverged"]
    for k, cfg in enumerate(configs):
        ref, ref_history = trainer_alone(
            mlp, cfg, train, None, epochs=5, batch_size=10, optimizer="sgd", seed=0
        )
        assert histories[k].stop_reason == ref_history.stop_reason
        assert not ref_history.stop_reason.endswith("batch 0")  # after finite steps of the epoch
        assert histories[k].equals(ref_history)
        scale = max(p.abs().max().item() for p in ref.parameters())
        assert max_diff(pop.member(k), ref) <= 1e-9 * max(scale, 1.0)


def test_train_population_returns_models_and_histories():
    train = make_data(40, 10, 3, seed=10)
    models, histories = train_population(
        mlp(), [{"seed": 0}, {"seed": 1}], train, epochs=1, batch_size=20, dtype=torch.float64
    )
    assert [type(m) for m in models] == [MLP, MLP] and [len(h) for h in histories] == [1, 1]
    assert max_diff(models[0], models[1]) > 0  # different seeds, different members


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masks", ["independent", "common"])
def test_results_do_not_depend_on_the_number_of_threads(dtype, masks):
    """1, 2 and 3 shards (threads): bit-identical weights and histories, dropout and noise on."""
    train, val = make_data(90, 10, 3, seed=7), make_data(30, 10, 3, seed=8)
    configs = [
        {"lr": 1e-2, "seed": k, "dropout": 0.1 * (k % 4), "noise": 0.2 * (k % 2), "weight_decay": 1e-3 * k}
        for k in range(5)
    ]
    runs = []
    for threads in (1, 2, 3):
        pop = Population(mlp(), configs, seed=3, dtype=dtype, dropout_masks=masks, threads=threads)
        rule = EarlyStopping(monitor="val_loss", patience=1)
        histories = pop.fit(train, val, epochs=3, batch_size=16, early_stopping=rule)
        rows = [[{k: v for k, v in r.items() if k != "time"} for r in h.rows] for h in histories]
        runs.append(
            ([pop.member(k).state_dict() for k in range(len(configs))], rows, (pop.member_steps_, pop.status))
        )
    weights, rows, steps = runs[0]
    assert any(r["train_loss"] != rows[0][0]["train_loss"] for r in rows[1])  # members do differ
    for other_weights, other_rows, other_steps in runs[1:]:
        assert other_rows == rows and other_steps == steps
        for a, b in zip(weights, other_weights):
            assert all(torch.equal(a[n], b[n]) for n in a)


def test_every_shard_thread_steps_on_one_intra_op_thread_from_its_first_step(monkeypatch):
    """torch sets a new thread's OpenMP and MKL thread counts lazily, at the first op that asks: a pool
    thread ran the first ops of its first step on as many threads as the machine has, next to the
    main thread's shard (more threads than cores). Read with OpenMP's own call, not torch's, whose
    first call in a thread is what sets the count."""
    import ctypes
    import os
    import threading

    from reglab.population._shard import Shard

    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")
    if not os.path.exists(path):
        pytest.skip("torch does not ship libgomp here")
    omp_max_threads = ctypes.CDLL(path).omp_get_max_threads
    seen, real_step = [], Shard.step

    def step(shard, *args):
        seen.append((threading.current_thread() is threading.main_thread(), omp_max_threads()))
        return real_step(shard, *args)

    monkeypatch.setattr(Shard, "step", step)
    before = torch.get_num_threads()
    x, y = make_data(40, 10, 3, seed=0)
    try:
        torch.set_num_threads(3)  # what a pool thread starts with, as a fresh thread, where it ran first
        Population(mlp(), [{"seed": s} for s in range(3)], threads=3).fit((x, y), epochs=1, batch_size=20)
        assert torch.get_num_threads() == 3  # restored for the caller
    finally:
        torch.set_num_threads(before)
    assert sum(not main for main, _ in seen) == 4  # two pool threads, two steps each
    assert {count for _, count in seen} == {1}


def test_threads_is_validated():
    with pytest.raises(ValueError, match=r"The 'threads' parameter of Population must be an int .* Got 0"):
        Population(mlp(), [{"seed": 0}], threads=0)


def test_default_threads_one_shard_per_cpu_thread_and_one_on_a_gpu():
    from reglab.population._population import default_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert default_threads(torch.device("cpu")) == 2
        assert default_threads(torch.device("cuda")) == 1  # the device object only: no GPU needed
        x, y = make_data(60, 10, 3, seed=0)
        pop = Population(mlp(), [{"seed": s} for s in range(3)], dtype=torch.float64)
        pop.fit((x, y), epochs=1, batch_size=20)
        assert len(pop._shards) == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("norm", [None, "batch"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_member_diverging_leaves_the_others_bit_for_bit_unchanged(norm, optimizer):
    """The others' dropout masks, input noise and BatchNorm statistics are drawn / updated once per step,
    as if the diverging member were not there (it is the last, so member ids, hence streams, agree)."""
    train, val = make_data(100, 10, 3, seed=9), make_data(30, 10, 3, seed=10)
    others = [
        {"lr": 1e-2, "seed": 0, "dropout": 0.3, "noise": 0.1},
        {"lr": 5e-3, "seed": 1, "dropout": 0.1, "weight_decay": 1e-2},
    ]
    runs = []
    for configs in (others, [*others, {"lr": 1e300, "seed": 2, "dropout": 0.2}]):
        arch = MLP(10, 3, hidden=(8, 8), norm=norm)
        options = dict(optimizer=optimizer, momentum=0.9, dtype=torch.float64, seed=4, threads=1)  # one shard
        pop = Population(arch, configs, **options)
        histories = pop.fit(train, val, epochs=4, batch_size=25)
        rows = [[{k: v for k, v in r.items() if k != "time"} for r in h.rows] for h in histories[:2]]
        runs.append((pop, rows))
    (alone, alone_rows), (with_diverging, rows) = runs
    assert with_diverging.status == ["finished", "finished", "diverged"]
    assert rows == alone_rows
    for k in range(2):
        a, b = alone.member(k).state_dict(), with_diverging.member(k).state_dict()
        assert all(torch.equal(a[name], b[name]) for name in a), k


def _mlp_batchnorm(d=0.0):
    return MLP(10, 3, hidden=(12,), norm="batch", dropout=d)


@pytest.mark.parametrize("build", [_mlp_batchnorm, cnn("batch")], ids=["mlp", "cnn"])
def test_a_last_batch_of_one_example_is_skipped_with_batch_norm_as_by_the_trainer(build):
    """41 examples in batches of 20 leave one: torch's BatchNorm refuses it in the Trainer, and its running
    variance would divide by 0 in the population, so both skip it (and train the same weights)."""
    features = 24 if build().__class__ is CNN1D else 10
    train, val = make_data(41, features, 3, seed=2), make_data(30, features, 3, seed=3)
    configs = [{"lr": 1e-2, "seed": 3}, {"lr": 3e-3, "seed": 4}]
    pop = Population(build(), configs, seed=5, dtype=torch.float64)
    histories = pop.fit(train, val, epochs=3, batch_size=20)
    assert pop.member_steps_ == 2 * 3 * 2  # two batches of 20 per epoch, the single example skipped
    for k, cfg in enumerate(configs):
        ref, history = trainer_alone(build, cfg, train, val, epochs=3, batch_size=20, optimizer="adam",
                                     seed=5)
        assert max_diff(pop.member(k), ref) <= 1e-9, k
        assert all(bool(torch.isfinite(b).all()) for b in pop.member(k).buffers())  # running statistics
        assert histories[k]["train_loss"] == pytest.approx(history["train_loss"], rel=1e-9)


def _relative_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(((sa[n] - sb[n]).abs().max() / sb[n].abs().max().clamp(min=1e-300)).item() for n in sa)


@pytest.mark.parametrize("restore", [True, False])
def test_a_diverged_member_keeps_what_the_trainer_keeps_and_histories_name_the_trainers_best_epoch(restore):
    """Member 1 finishes epoch 0, then its loss turns NaN at epoch 1: with restore_best_weights the Trainer's
    EarlyStopping restores epoch 0's weights at the end of the fit, and so must the population. Member 2
    diverges before any epoch ends (nothing to restore, no best epoch)."""
    train, val = make_data(100, 10, 3, seed=0), make_data(50, 10, 3, seed=1)
    configs = [{"lr": 1e-2, "seed": 0}, {"lr": 1e8, "seed": 0}, {"lr": 1e20, "seed": 0}]

    def stopper():
        return EarlyStopping("val_loss", patience=5, restore_best_weights=restore)

    pop = Population(mlp(), configs, optimizer="sgd", momentum=0.9, seed=5, dtype=torch.float64)
    histories = pop.fit(train, val, epochs=4, batch_size=25, early_stopping=stopper())
    assert pop.status == ["finished", "diverged", "diverged"]
    for k, cfg in enumerate(configs):
        ref, history = trainer_alone(mlp, cfg, train, val, epochs=4, batch_size=25, optimizer="sgd", seed=5,
                                     momentum=0.9, callbacks=[stopper()])
        assert _relative_diff(pop.member(k), ref) <= 1e-12, k
        assert histories[k].stop_reason == history.stop_reason
        assert (histories[k].monitor, histories[k].best_epoch) == (history.monitor, history.best_epoch), k
    assert histories[2].best_epoch is None


@pytest.mark.parametrize("validated", [True, False])
def test_without_early_stopping_histories_name_the_best_epoch_as_the_trainers_do(validated):
    train, val = make_data(90, 10, 3, seed=2), make_data(30, 10, 3, seed=3)
    cfg = {"lr": 1e-2, "seed": 3}
    pop = Population(mlp(), [cfg], seed=5, dtype=torch.float64)
    (history,) = pop.fit(train, val if validated else None, epochs=4, batch_size=20)
    _, ref = trainer_alone(mlp, cfg, train, val if validated else None, epochs=4, batch_size=20,
                           optimizer="adam", seed=5)
    assert history.monitor == ref.monitor == ("val_loss" if validated else "train_loss")
    assert history.best_epoch == ref.best_epoch is not None


def test_evaluate_checks_its_batch_size():
    pop = Population(mlp(), [{}])
    for bad in (0, -5, "a", 2.5):
        with pytest.raises(InvalidParameterError, match=r"'batch_size' parameter of Population.evaluate"):
            pop.evaluate(make_data(8, 10, 3, seed=0), batch_size=bad)


def test_float32_weight_statistics_equal_the_trainers_helpers():
    """The end-of-epoch norm and zero fraction (computed in the weights' dtype, zeros counted by |sign|)
    equal reglab.selectors.weight_norm and reglab.optim.sparsity on each final member."""
    from reglab.optim import sparsity
    from reglab.selectors import weight_norm

    train = make_data(120, 10, 3, seed=0)
    configs = [
        {"lr": 5e-2, "seed": 0, "prox_l1": 5e-2},
        {"lr": 5e-2, "seed": 1},
        {"lr": 1e-2, "seed": 2, "l1": 1e-3},
    ]
    pop = Population(mlp(), configs, seed=3)
    histories = pop.fit(train, epochs=4, batch_size=30)
    assert histories[0].rows[-1]["zero_fraction"] > 0.01  # the prox step made exact zeros
    for k in range(len(configs)):
        row, model = histories[k].rows[-1], pop.member(k)
        assert row["zero_fraction"] == sparsity(model)["overall"]
        assert row["weight_norm"] == pytest.approx(weight_norm(model), rel=1e-6)


def test_fit_takes_a_data_splits_and_progress_as_a_bool_as_the_trainer_does():
    """A DataSplits was refused ('a TensorSplit or an (x, y) pair'), and progress=False too, though
    Study.run(progress=False) takes it."""
    from reglab.data import from_tensors

    x = torch.randn(90, 10, generator=torch.Generator().manual_seed(0))
    d = from_tensors(x, torch.arange(90) % 3, seed=0)
    configs = [{"seed": 0}, {"seed": 1, "l2": 1e-3}]
    a = Population(mlp(), configs, seed=2).fit(d, epochs=2, batch_size=16, progress=False)
    b = Population(mlp(), configs, seed=2).fit(d.train, d.val, epochs=2, batch_size=16, progress="off")
    for ha, hb in zip(a, b):
        assert ha.to_pandas().drop(columns="time").equals(hb.to_pandas().drop(columns="time"))
        assert "val_loss" in ha.rows[-1]
    with pytest.raises(InvalidParameterError, match="'progress' parameter of Population.fit must be one of"):
        Population(mlp(), configs).fit(d, epochs=1, progress="loud")
