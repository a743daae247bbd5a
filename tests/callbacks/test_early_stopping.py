"""EarlyStopping against Keras 3's semantics (keras/src/callbacks/early_stopping.py)."""

import math
import operator
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.callbacks import EarlyStopping

LOSSES = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]  # Keras' test_early_stopping_patience


def keras_reference(values, *, mode, patience=0, min_delta=0.0, baseline=None, start_from_epoch=0):
    """Keras 3's on_epoch_end, transcribed (ops.less/greater -> operator.lt/gt).

    Returns ``(stopped_epoch or None, best_epoch)``.
    """
    op = operator.lt if mode == "min" else operator.gt
    delta = -abs(min_delta) if mode == "min" else abs(min_delta)

    def is_improvement(value, reference):
        return True if reference is None else op(value - delta, reference)

    best, wait, best_epoch = None, 0, 0
    for epoch, current in enumerate(values):
        if epoch < start_from_epoch:
            continue
        wait += 1
        if is_improvement(current, best):
            best, best_epoch = current, epoch
            if baseline is None or is_improvement(current, baseline):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch


# (kwargs, values, expected stop epoch or None, expected best epoch): worked by hand from Keras' rules.
TABLE = [
    ({"patience": 0}, LOSSES, 3, 2),  # Keras: stopped_epoch == max(patience, 1) + 2
    ({"patience": 1}, LOSSES, 3, 2),
    ({"patience": 2}, LOSSES, 4, 2),
    ({"patience": 3}, LOSSES, 5, 2),
    ({"patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.9, 0.89], 1, 0),  # 0.95 + 0.1 is not < 1.0
    ({"patience": 1, "min_delta": 0.04}, [1.0, 0.95, 0.9, 0.89], 3, 2),
    ({"patience": 1, "min_delta": -0.04}, [1.0, 0.95, 0.9, 0.89], 3, 2),  # abs(min_delta), as Keras
    ({"monitor": "val_accuracy", "patience": 1}, [0.5, 0.6, 0.6, 0.55], 2, 1),  # a tie is no improvement
    ({"monitor": "val_accuracy", "patience": 2}, [0.5, 0.6, 0.6, 0.61, 0.6, 0.6], 5, 3),
    ({"monitor": "val_accuracy", "mode": "min", "patience": 0}, [0.5, 0.6], 1, 0),
    ({"patience": 5, "baseline": 0.5}, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], 4, 2),  # Keras' baseline case
    ({"patience": 2, "baseline": 0.85}, [0.9, 0.8, 0.81, 0.82, 0.83], 3, 1),
    ({"patience": 0, "start_from_epoch": 2}, [5.0, 4.0, 3.0, 3.5], 3, 2),
    ({"patience": 1, "start_from_epoch": 2}, [1.0, 2.0, 3.0, 4.0, 5.0], 3, 2),
    ({"patience": 1}, [1.0, 2.0, 3.0, 4.0, 5.0], 1, 0),
    ({"patience": 2}, [0.2, 0.15, 0.1, 0.11, 0.12], 4, 2),  # Keras' restore test
    ({"patience": 0}, [3.0, 2.0, 1.0], None, 2),
]


@pytest.mark.parametrize(("kwargs", "values", "stop", "best_epoch"), TABLE)
def test_table_matches_hand_computation_and_keras_transcription(kwargs, values, stop, best_epoch):
    es = EarlyStopping(**kwargs)
    decisions = [es.update(v) for v in values[: (stop + 1) if stop is not None else None]]
    assert decisions == [False] * (len(decisions) - 1) + [stop is not None]
    assert es.stopped == (stop is not None)
    if stop is not None:
        assert es.stopped_epoch == stop
    assert es.best_epoch == best_epoch
    mode = es.direction
    ref = keras_reference(
        values, mode=mode, **{k: v for k, v in kwargs.items() if k not in ("monitor", "mode")}
    )
    assert ref == (stop, best_epoch)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(0, 10, allow_nan=False).map(lambda v: round(v, 1)), min_size=1, max_size=15),
    mode=st.sampled_from(["min", "max"]),
    patience=st.integers(0, 4),
    min_delta=st.sampled_from([0.0, 0.05, 0.3]),
    baseline=st.sampled_from([None, 2.0, 8.0]),
    start_from_epoch=st.integers(0, 3),
)
def test_random_sequences_match_keras_transcription(
    values, mode, patience, min_delta, baseline, start_from_epoch
):
    kw = dict(patience=patience, min_delta=min_delta, baseline=baseline, start_from_epoch=start_from_epoch)
    es = EarlyStopping(monitor="val_loss", mode=mode, **kw)
    stop = next((e for e, v in enumerate(values) if es.update(v)), None)
    assert (stop, es.best_epoch) == keras_reference(values, mode=mode, **kw)


def test_explicit_epoch_and_reset():
    es = EarlyStopping(patience=0, start_from_epoch=3)
    assert not es.update(1.0, epoch=0) and not es.update(5.0, epoch=1)  # warm-up ignored
    assert not es.update(2.0, epoch=3) and es.update(2.5, epoch=4)
    es.reset()
    assert es.best is None and es.wait == 0 and not es.stopped


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_stops_with_reason(bad):
    es = EarlyStopping(patience=10)
    assert not es.update(1.0)
    assert es.update(bad)
    assert es.stopped_epoch == 1 and str(bad) in es.reason


@pytest.mark.parametrize(
    ("monitor", "direction"),
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("val_mse", "min"),
        ("train_mae", "min"),
        ("val_accuracy", "max"),
        ("acc", "max"),
        ("val_auc", "max"),
        ("f1_score", "max"),
    ],
)
def test_auto_mode_from_name(monitor, direction):
    assert EarlyStopping(monitor=monitor).direction == direction


def test_argument_errors_name_parameter_and_value():
    with pytest.raises(
        InvalidParameterError, match=r"The 'patience' parameter of EarlyStopping must be an int"
    ):
        EarlyStopping(patience=-1)
    with pytest.raises(
        InvalidParameterError, match=r"'mode' parameter of EarlyStopping must be one of .*'mx'"
    ):
        EarlyStopping(mode="mx")
    with pytest.raises(InvalidParameterError, match=r"'mode' parameter of EarlyStopping.*weight_norm"):
        EarlyStopping(monitor="weight_norm")  # direction cannot be inferred: Keras raises too


class _Weights(SimpleNamespace):
    """Dummy trainer whose model weight equals the epoch number, as Keras' restore test."""


def _run(es, values, stop_at=None):
    trainer = _Weights(model=nn.Linear(1, 1, bias=False), should_stop=False, stop_reason=None)
    es.on_fit_start(trainer)
    for epoch, v in enumerate(values):
        with torch.no_grad():
            trainer.model.weight.fill_(epoch)
        es.on_epoch_end(trainer, epoch, {"val_loss": v})
        if trainer.should_stop:
            break
    es.on_fit_end(trainer)
    return trainer, float(trainer.model.weight.detach())


def test_restore_best_weights_after_stop():
    trainer, w = _run(EarlyStopping(patience=2, restore_best_weights=True), [0.2, 0.15, 0.1, 0.11, 0.12])
    assert w == 2.0 and trainer.should_stop and "did not improve" in trainer.stop_reason


def test_restore_best_weights_without_stop_is_reglab_default_and_can_be_turned_off():
    values = [0.3, 0.1, 0.2, 0.25]
    _, w = _run(EarlyStopping(patience=10, restore_best_weights=True), values)
    assert w == 1.0
    _, w = _run(EarlyStopping(patience=10, restore_best_weights=True, restore_without_stop=False), values)
    assert w == 3.0
    _, w = _run(EarlyStopping(patience=10), values)
    assert w == 3.0


def test_restore_when_nothing_beats_baseline():  # Keras: trains `patience` epochs, restores the best of them
    _, w = _run(
        EarlyStopping(patience=5, baseline=0.5, restore_best_weights=True), [0.9, 0.8, 0.7, 0.71, 0.72, 0.73]
    )
    assert w == 2.0


def test_missing_monitor_lists_available_metrics():
    es = EarlyStopping(monitor="val_accurcy")
    logs = {"train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5}
    match = r"'monitor' parameter of EarlyStopping must be one of 'train_loss', .*Did you mean 'val_accuracy'"
    with pytest.raises(InvalidParameterError, match=match):
        es.on_epoch_end(SimpleNamespace(), 0, logs)


def test_state_dict_round_trip_continues_identically():
    values = [5.0, 4.0, 4.5, 3.9, 4.1, 4.2, 4.3]
    full = EarlyStopping(patience=2)
    expected = [full.update(v) for v in values]
    first = EarlyStopping(patience=2)
    got = [first.update(v) for v in values[:3]]
    second = EarlyStopping(patience=2)
    second.load_state_dict(first.state_dict())
    got += [second.update(v) for v in values[3:]]
    assert got == expected


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_loss", "min"), ("val_jaccard_loss", "min"), ("val_iou_loss", "min"),
     ("train_accuracy_loss", "min"), ("val_f1", "max"), ("val_iou", "max"), ("val_mse", "min")],
)
def test_auto_mode_minimizes_every_loss_whatever_it_is_named_after(monitor, mode):
    from reglab.callbacks.early_stopping import infer_mode

    assert infer_mode(monitor) == mode
    es = EarlyStopping(monitor, patience=5)
    es.update(1.0, 0)
    es.update(0.5, 1)
    assert es.best == (0.5 if mode == "min" else 1.0)


@pytest.mark.parametrize("monitor", [None, 5])
def test_a_monitor_that_is_not_a_name_is_one_clear_error(monitor):
    from reglab.callbacks import ModelCheckpoint

    for build in (lambda: EarlyStopping(monitor), lambda: ModelCheckpoint("ckpt", monitor=monitor)):
        message = r"'monitor' parameter of \w+ must be a (non-empty )?metric"
        with pytest.raises(InvalidParameterError, match=message):
            build()


@pytest.mark.parametrize("value", ["0.5", None, True, torch.ones(2), [1.0]])
def test_update_refuses_what_is_not_one_number(value):
    es = EarlyStopping(patience=1)
    with pytest.raises(InvalidParameterError, match=r"^The 'value' parameter of EarlyStopping.update "):
        es.update(value)
    assert es.wait == 0 and es._next_epoch == 0  # nothing was recorded


def test_update_takes_numpy_scalars_and_one_element_tensors():
    import numpy as np

    es = EarlyStopping(patience=0)
    assert es.update(np.float32(2.0)) is False and es.update(torch.tensor(3.0)) is True
    with pytest.raises(InvalidParameterError, match=r"'epoch' parameter of EarlyStopping.update must be an"):
        EarlyStopping().update(1.0, epoch=-1)


def test_a_validation_monitor_without_validation_data_says_so(tmp_path):
    """It suggested the nearest train_* name ("Did you mean 'train_loss'?"), which monitors another thing."""
    import reglab
    from reglab.callbacks import ModelCheckpoint

    x, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    no_val = r"this fit has no validation data: pass val to fit to monitor 'val_loss'\)\. Got 'val_loss'"
    for kw in ({"callbacks": [EarlyStopping("val_loss")]}, {"monitor": "val_loss"}):
        with pytest.raises(ValueError, match=no_val):
            reglab.fit(reglab.MLP(4, 2), (x, y), epochs=1, progress="off", **kw)
    with pytest.raises(ValueError, match="no validation data"):
        ckpt = ModelCheckpoint(tmp_path / "c", monitor="val_loss")
        reglab.fit(reglab.MLP(4, 2), (x, y), epochs=1, progress="off", callbacks=[ckpt])
    with pytest.raises(ValueError, match="Did you mean 'train_loss'"):  # a misspelling still gets the hint
        reglab.fit(reglab.MLP(4, 2), (x, y), epochs=1, progress="off",
                   callbacks=[EarlyStopping("train_los", mode="min")])


@pytest.mark.parametrize(("monitor", "meant"), [("val_los", "val_loss"), ("val_acuracy", "val_accuracy")])
def test_a_misspelt_monitor_whose_direction_cannot_be_inferred_names_the_column_meant(monitor, meant):
    # It said only "mode must be 'min' or 'max'", as if the metric existed: a mode then led to a second error.
    with pytest.raises(InvalidParameterError, match=rf"'mode' .*Did you mean monitor='{meant}'\?$") as err:
        EarlyStopping(monitor=monitor)
    assert "\n" not in str(err.value)


def test_a_real_column_without_a_direction_gets_no_hint():
    with pytest.raises(InvalidParameterError) as err:
        EarlyStopping(monitor="weight_norm")
    assert "Did you mean" not in str(err.value)


def _noisy_fit(**trainer_kwargs):
    from reglab.models import MLP
    from reglab.train import Trainer

    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 6, generator=g)
    y = ((x[:, 0] + 0.8 * torch.randn(120, generator=g)) > 0).long()  # noisy labels: val metrics disagree
    torch.manual_seed(0)
    trainer = Trainer(MLP(6, 2, hidden=(32,)), epochs=25, batch_size=16, lr=0.02, seed=0, progress="off",
                      **trainer_kwargs)
    return trainer, trainer.fit((x[:80], y[:80]), (x[80:], y[80:])), (x[80:], y[80:])


def test_the_trainers_best_epoch_follows_the_early_stopping_rule_unless_told_otherwise():
    """With EarlyStopping('val_accuracy', restore_best_weights=True) and no Trainer monitor, the weights
    were the best val_accuracy epoch's while History.best_epoch named the best val_loss epoch."""
    rule = EarlyStopping("val_accuracy", patience=100, restore_best_weights=True)
    trainer, history, val = _noisy_fit(callbacks=[rule])
    accuracy, loss = history["val_accuracy"], history["val_loss"]
    best_accuracy = accuracy.index(max(accuracy))  # the first best, as the rule keeps it
    assert best_accuracy != loss.index(min(loss))  # the two rules disagree on this run
    assert history.best_epoch == best_accuracy == rule.best_epoch
    assert trainer.evaluate(val)["accuracy"] == accuracy[best_accuracy]  # the weights fit returned
    with pytest.raises(InvalidParameterError, match=r"'monitor' parameter of EarlyStopping .*no validation"):
        trainer.fit(val)  # the rule's monitor, not a Trainer setting the user never made, is named
    _, told, _ = _noisy_fit(callbacks=[EarlyStopping("val_accuracy", patience=100)], monitor="val_loss")
    assert told.best_epoch == told["val_loss"].index(min(told["val_loss"]))


def test_stop_reason_counts_epochs_in_english():
    from reglab.callbacks import EarlyStopping as ES

    one, two = ES(patience=1), ES(patience=2)
    assert [one.update(v) for v in (1.0, 2.0)] == [False, True]
    assert one.reason == "EarlyStopping: val_loss did not improve for 1 epoch (best 1 at epoch 0)"
    assert [two.update(v) for v in (1.0, 2.0, 3.0)] == [False, False, True]
    assert two.reason == "EarlyStopping: val_loss did not improve for 2 epochs (best 1 at epoch 0)"


@pytest.mark.parametrize(
    ("rule", "flip", "history_best", "restored"),
    [  # val_loss falls by < 0.5 per epoch late on: epoch 7 is lowest, but only 6 improved by min_delta
        ({"min_delta": 0.5}, False, 7, 6),
        # val on (x, -y): val_loss rises from epoch 0, which start_from_epoch=3 ignores: epoch 3 is kept
        ({"start_from_epoch": 3}, True, 0, 3),
    ],
)
def test_history_best_epoch_is_the_epoch_whose_weights_were_restored(rule, flip, history_best, restored):
    """History.best_epoch named the lowest val_loss while the weights restored were another epoch's."""
    from reglab.callbacks import Callback
    from reglab.models import MLP
    from reglab.train import Trainer

    snaps = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snaps.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    torch.manual_seed(0)
    model = MLP(4, 1, hidden=(8,)).double()
    es = EarlyStopping("val_loss", patience=2, restore_best_weights=True, **rule)
    trainer = Trainer(model, lr=0.01, epochs=8, batch_size=16, callbacks=[Snap(), es], progress="off")
    history = trainer.fit((x, y), val=(x, -y if flip else y))
    losses = history["val_loss"]
    assert losses.index(min(losses)) == history_best != restored  # the History's best is not the rule's
    final = model.state_dict()
    assert [e for e, s in enumerate(snaps) if all(torch.equal(s[k], final[k]) for k in s)] == [restored]
    assert history.best_epoch == es.best_epoch == es.restored_epoch == restored
