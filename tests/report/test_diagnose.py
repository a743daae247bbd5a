"""diagnose: table-driven synthetic histories with known verdicts, and the recommendation seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.report.diagnose import (
    Context,
    Thresholds,
    classify,
    diagnose,
    measure,
    recommend,
    still_falling,
)


def _history(train, val, *, noise=0.01, seed=0, **extra) -> pd.DataFrame:
    """Curves with multiplicative seeded noise of `noise` (1 % by default)."""
    rng = np.random.default_rng(seed)
    train = np.asarray(train, float) * (1 + noise * rng.standard_normal(len(train)))
    val = np.asarray(val, float) * (1 + noise * rng.standard_normal(len(val)))
    return pd.DataFrame({"epoch": np.arange(len(train)), "train_loss": train, "val_loss": val, **extra})


E = np.arange(60.0)
CASES = {
    # Training loss goes to ~0, validation loss bottoms out at epoch 15 then climbs.
    "overfit": (2.3 * np.exp(-E / 8) + 0.02, 0.6 + 0.0006 * (E - 15) ** 2 + 1.5 * np.exp(-E / 5),
                "overfit", "val-rising"),
    # Early-stopped-like: validation flat, training keeps falling, gap large and growing.
    "overfit-gap": (2.3 * np.exp(-E / 6) + 0.01, 0.8 + 1.5 * np.exp(-E / 5), "overfit", "gap-growing"),
    # Both losses still falling steadily at the end, gap tiny.
    "underfit-improving": (2.3 - 0.02 * E, 2.35 - 0.02 * E, "underfit", "still-improving"),
    # Training loss still falling steadily at 75 % of its first value while validation loss has stalled.
    "underfit-slow": (2.3 - 0.01 * E, 2.35 - 0.015 * np.minimum(E, 35) + 0.003 * np.maximum(E - 35, 0),
                      "underfit", "little-progress"),
    # Flat after a small drop, train close to val: under-fit, converged at a floor (noise, or bias).
    "plateau": (1.9 + 0.4 * np.exp(-E / 3), 1.95 + 0.4 * np.exp(-E / 3), "underfit", "high-plateau"),
    # Training loss above validation loss at a plateau: train-time regularization dominates.
    "overregularized": (0.9 + 1.4 * np.exp(-E / 5), 0.7 + 1.6 * np.exp(-E / 5), "overregularized",
                        "train-above-val"),
    # Both errors fall, then both rise.
    "both-rising": (0.5 + 0.0008 * (E - 20) ** 2, 0.6 + 0.001 * (E - 20) ** 2, "overregularized",
                    "both-rising"),
    # Converged, small stable gap, validation loss at its minimum at the end.
    "fine": (0.3 + 2 * np.exp(-E / 5), 0.36 + 2 * np.exp(-E / 5), "fine", "none"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_histories_are_classified(name, seed):
    train, val, verdict, rule = CASES[name]
    d = diagnose(_history(train, val, seed=seed))
    assert (d.verdict, d.rule) == (verdict, rule), d.to_text()


def test_evidence_matches_hand_computation():
    # 10 epochs -> k = 1: end values are the last epoch's.
    h = pd.DataFrame({"epoch": range(10), "train_loss": [5, 4, 3, 2, 1.5, 1.2, 1.0, 0.9, 0.8, 0.5],
                      "val_loss": [5, 4, 3, 2.5, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0]})
    ev = measure(h)
    assert ev.best_epoch == 4 and ev.best_val_loss == 2.0
    assert ev.val_rise == pytest.approx((3.0 - 2.0) / 2.0)
    assert ev.gap == pytest.approx(2.5) and ev.relative_gap == pytest.approx(1.25)
    assert ev.gap_mid == pytest.approx(2.2 - 1.2)  # mid-run: epoch index n // 2 = 5
    assert ev.train_recent_drop == pytest.approx((1.0 - 0.5) / 1.0)  # index 3n // 4 - 1 = 6
    assert ev.train_progress == pytest.approx(0.5 / 5)
    assert classify(ev) == ("overfit", "val-rising")


def test_thresholds_move_the_decision():
    # Validation ends 8 % above its minimum: fine by default (10 %), over-fit with rise=0.05.
    val = [2, 1.5, 1.2, 1.0, 1.0, 1.02, 1.04, 1.06, 1.08, 1.08]
    train = [2, 1.45, 1.15, 0.97, 0.96, 0.96, 0.96, 0.96, 0.96, 0.96]
    h = pd.DataFrame({"epoch": range(10), "train_loss": train, "val_loss": val})
    assert diagnose(h).verdict == "fine"
    assert diagnose(h, thresholds=Thresholds(rise=0.05)).verdict == "overfit"


@pytest.mark.parametrize(
    ("task", "ctx", "expected"),
    [
        ("image", {}, {"dropout": 0.3, "augment": "image"}),
        ("text", {}, {"weight_decay": 0.01}),
        ("signal", {}, {"dropout": 0.1, "augment": "signal"}),
        ("tabular", {"features": 500}, {"l1": 1e-4}),
        ("tabular", {"features": 10, "samples": 50_000}, {"weight_decay": 1e-3, "dropout": 0.1}),
        (None, {"samples": 1000}, {"early_stopping": True, "augment": True}),
        (None, {"params": 1_000_000, "samples": 20_000}, {"weight_decay": 0.01, "dropout": 0.3}),
        ("image", {"batchnorm": True}, {"dropout": 0.2, "augment": "image"}),
    ],
)
def test_overfit_recommendations_follow_the_seeds(task, ctx, expected):
    train, val, *_ = CASES["overfit"]
    d = diagnose(_history(train, val), task=task, **ctx)
    changes = [r.change for r in d.recommendations]
    assert expected in changes, changes
    # always: restore the best epoch, by the validation loss the advice names (not a study's default accuracy)
    assert {"early_stopping": {"monitor": "val_loss", "patience": 10}} in changes
    if ctx.get("batchnorm"):
        assert all(c.get("dropout", 0) <= 0.2 for c in changes)
        assert {"max_dropout": 0.2} in changes


def test_other_verdicts_recommend_the_right_direction():
    ev_both = measure(_history(*CASES["both-rising"][:2]))
    both = [r.change for r in recommend("overregularized", "both-rising", ev_both)]
    assert {"regularization_factor": 0.5} in both and {"lr_factor": 0.5} in both
    ev_under = measure(_history(*CASES["underfit-improving"][:2]))
    assert {"epochs_factor": 2} in [r.change for r in recommend("underfit", "still-improving", ev_under)]


def test_train_above_val_advice_says_dropout_inflates_the_training_loss():
    """A healthy dropout run logs its training loss with dropout on, above the validation loss: the advice
    to halve the regularization must not read as a certainty there (and adds no recipe to verify)."""
    train, val, verdict, rule = CASES["overregularized"]
    d = diagnose(_history(train, val))
    assert (d.verdict, d.rule) == (verdict, rule)
    caveat = [r for r in d.recommendations if "measured with them on" in r.action]
    assert len(caveat) == 1 and caveat[0].change == {} and "dropout" in caveat[0].action
    ev_both = measure(_history(*CASES["both-rising"][:2]))
    both = recommend("overregularized", "both-rising", ev_both)
    assert not any("measured with them on" in r.action for r in both)


def test_accuracy_peak_after_loss_minimum_is_noted():
    # The MNIST-1D pattern: val loss bottoms out near epoch 6 while val accuracy keeps rising.
    train, val, *_ = CASES["overfit"]
    acc = 0.5 + 0.4 * (1 - np.exp(-E / 20))
    d = diagnose(_history(train, val, val_accuracy=acc, train_accuracy=np.minimum(1, acc + 0.2)))
    assert d.evidence.best_val_accuracy_epoch == 59
    assert any("monitor val_accuracy" in n for n in d.notes)


def test_json_round_trip_is_plain_data():
    train, val, *_ = CASES["fine"]
    out = json.loads(json.dumps(diagnose(_history(train, val), task="text").to_dict()))
    assert out["verdict"] == "fine" and out["label"] == "fine" and out["context"]["task"] == "text"
    assert out["evidence"]["epochs"] == 60 and out["thresholds"]["rise"] == 0.1


def test_too_short_or_diverged_history_is_a_user_error():
    h = pd.DataFrame({"epoch": range(3), "train_loss": [1, 0.5, 0.4], "val_loss": [1, 0.6, 0.5]})
    with pytest.raises(UserError, match="3 epoch.*at least 5"):
        diagnose(h)
    h = pd.DataFrame({"epoch": range(6), "train_loss": [1, 0.5, np.inf, 1, 1, 1], "val_loss": [1] * 6})
    with pytest.raises(UserError, match="diverged"):
        diagnose(h)


def test_bad_context_uses_the_validation_format():
    train, val, *_ = CASES["fine"]
    with pytest.raises(InvalidParameterError, match=r"The 'task' parameter of diagnose must be one of .*"
                       r"Got 'imgae' instead\. Did you mean 'image'\?"):
        diagnose(_history(train, val), task="imgae")
    with pytest.raises(InvalidParameterError, match=r"'samples' parameter of diagnose must be an int"):
        Context(samples=0)
    with pytest.raises(InvalidParameterError, match=r"'rise' parameter of Thresholds"):
        Thresholds(rise=-1)


def test_epochs_read_from_csv_are_ints(tmp_path):
    """The README example: a CSV round trip gives epoch 8, an int (not 8.0)."""
    from reglab.report.histories import read_history

    e = np.arange(40)
    path = tmp_path / "history.csv"
    pd.DataFrame({"epoch": e, "train_loss": 2.0 * np.exp(-e / 5),
                  "val_loss": 1.0 + 0.02 * (e - 8) ** 2 / 8}).to_csv(path, index=False)
    d = diagnose(read_history(path), task="image")
    assert (d.verdict, d.evidence.best_epoch) == ("overfit", 8)
    for value in (d.evidence.best_epoch, d.evidence.first_epoch, d.evidence.last_epoch):
        assert type(value) is int
    assert "at epoch 8;" in d.to_text() and "epoch 8, the lowest" in d.to_text()
    # Fractional epoch numbers (a mid-epoch log) stay floats.
    h = _history(np.linspace(1, 0.5, 8), np.linspace(1, 0.6, 8), noise=0.0)
    assert measure(h.assign(epoch=h["epoch"] + 0.5)).best_epoch == 7.5


@pytest.mark.parametrize(
    ("train", "phrase"),
    [
        (2.0 * np.exp(-np.arange(40) / 5), "change over the last quarter (still falling)"),
        (np.full(40, 0.5), "+0.0% change over the last quarter (flat)"),
        (0.5 + 0.01 * np.arange(40), "change over the last quarter (rising)"),
    ],
)
def test_last_quarter_change_is_signed(train, phrase):
    """A falling training loss shows a negative change, a rising one a positive change."""
    h = pd.DataFrame({"epoch": np.arange(40), "train_loss": train, "val_loss": np.full(40, 1.0)})
    ev = measure(h)
    k, q = 4, 30  # k = round(40 / 10), q = 3 * 40 // 4: the means of epochs 26..29 and 36..39
    change = (train[-k:].mean() - train[q - k : q].mean()) / train[q - k : q].mean()
    assert ev.train_recent_drop == pytest.approx(-change)
    text = diagnose(h).to_text()
    assert phrase in text
    assert f"{change + 0.0:+.1%} change over the last quarter" in text
    if "falling" in phrase:
        assert change < 0 and f"{change:+.1%}".startswith("-")
    if "rising" in phrase:
        assert change > 0


def _diverged_fit():
    """A reglab History whose run blew up (SGD at lr 1e3) and stopped on the non-finite loss."""
    import torch

    from reglab.models import MLP
    from reglab.train import fit

    x, y = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 2
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the model's initial weights: some (1 in 200) do not blow up within 10 epochs
        history = fit(MLP(5, 2, hidden=(4,)), (x, y), (x, y), epochs=10, lr=1e3, optimizer="sgd",
                      progress="off")
    assert "non-finite training loss" in history.stop_reason
    return history


def test_a_run_that_diverged_is_said_to_have_diverged_not_judged_on_its_first_epochs():
    """Its last row holds the NaN loss (a reglab History, Keras's CSVLogger); dropping it hid the blow-up."""


    epochs = np.arange(10.0)
    h = pd.DataFrame({"epoch": epochs, "train_loss": np.r_[np.linspace(1, 0.2, 9), np.nan],
                      "val_loss": np.r_[np.linspace(1, 0.3, 6), 0.4, 0.5, 0.6, np.nan]})
    with pytest.raises(UserError, match="the run diverged; lower the learning rate"):
        diagnose(h)
    assert diagnose(h.iloc[:-1]).verdict == "overfit"  # the same epochs without the blow-up
    history = _diverged_fit()
    with pytest.raises(UserError, match="the run diverged"):
        diagnose(history.to_pandas())


def test_text_columns_are_numbers_or_one_clear_error():
    e = np.arange(12)
    h = pd.DataFrame({"epoch": e[::-1], "train_loss": (2 * np.exp(-e / 4) + 0.01)[::-1],
                      "val_loss": (2 * np.exp(-e / 4) + 0.05 + 0.05 * np.maximum(e - 6, 0))[::-1]})
    as_text = h.assign(epoch=h["epoch"].astype(str))  # "10" < "9" as text would reorder the epochs
    assert measure(as_text) == measure(h) and measure(h).best_epoch == 9
    with pytest.raises(UserError, match=r"the history's train_loss column holds text \('x' in row 0\)"):
        measure(h.assign(train_loss=["x", *h["train_loss"][1:]]))
    with pytest.raises(InvalidParameterError, match=r"'thresholds' parameter of diagnose must be a"):
        diagnose(h, thresholds=3)


@pytest.mark.parametrize(
    "tail",
    [
        "6,nan,nan\n",  # one NaN row, as a reglab History's CSV writes a divergence
        "6,nan,nan\n7,nan,nan\n",  # several
        "6,nan,0.9\n",  # NaN in the training loss only
        "6,NaN,\n",  # NaN, and an empty validation cell
    ],
)
def test_a_diverged_csv_is_said_to_have_diverged_when_read_from_a_file(tmp_path, tail):
    """read_history dropped rows with a missing loss, the NaN rows of a blow-up with them, so diagnose
    judged the epochs before it (\"under-fitting, train longer\")."""
    from reglab.report.histories import read_history

    head = "epoch,train_loss,val_loss\n1,1.0,1.1\n2,0.8,0.9\n3,0.7,0.8\n4,0.6,0.75\n5,0.55,0.7\n"
    path = tmp_path / "history.csv"
    path.write_text(head + tail)
    with pytest.raises(UserError, match="the run diverged; lower the learning rate"):
        diagnose(read_history(path))
    keras = tmp_path / "keras.csv"  # Keras's CSVLogger: epoch,accuracy,loss,val_accuracy,val_loss
    keras.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
        f"{e},0.{e},{1 - e / 10},0.{e},{1.1 - e / 10}\n" for e in range(5)) + "5,nan,nan,nan,nan\n")
    with pytest.raises(UserError, match="the run diverged"):
        diagnose(read_history(keras))
    complete = tmp_path / "complete.csv"  # the same epochs without the blow-up are judged as before
    complete.write_text(head)
    assert diagnose(read_history(complete)).verdict in ("underfit", "fine", "overfit", "overregularized")


HEAD = "epoch,train_loss,val_loss\n1,1.0,1.1\n2,0.8,0.9\n3,0.7,0.8\n4,0.6,0.75\n5,0.55,0.7\n"


@pytest.mark.parametrize(
    "tail",
    [
        "6,,\n",  # an empty row (a logger cut off mid-line, a row for an epoch that never ran)
        "6,NA,NA\n",  # Keras's "missing"
        "6\n",  # a short row
        "6,,0.9\n",  # only the training loss missing
    ],
)
def test_a_missing_last_row_is_not_a_divergence(tmp_path, tail):
    """pandas reads an empty cell, NA and nan all as NaN: only a loss written as nan / inf is a blow-up."""
    from reglab.report.histories import read_history

    complete, path = tmp_path / "complete.csv", tmp_path / "history.csv"
    complete.write_text(HEAD)
    path.write_text(HEAD + tail)
    assert measure(read_history(path)) == measure(read_history(complete))
    assert diagnose(read_history(path)).verdict == diagnose(read_history(complete)).verdict


def test_a_lightning_test_row_and_a_json_null_row_are_not_a_divergence(tmp_path):
    from reglab.report.histories import read_history

    rows = [(e, 1.0 / (e + 1), 0.2 + 1.0 / (e + 1) + 0.01 * e) for e in range(10)]
    lightning = tmp_path / "metrics.csv"  # fit's rows, then trainer.test()'s row (epoch = max_epochs)
    lightning.write_text("epoch,step,train_loss,val_loss,test_loss\n" + "".join(
        f"{e},{10 * e + 9},{t},,\n{e},{10 * e + 9},,{v},\n" for e, t, v in rows) + "10,100,,,0.25\n")
    h = read_history(lightning)
    assert h["epoch"].tolist() == list(range(10))
    assert diagnose(h).verdict == "overfit"
    records = [{"epoch": e, "train_loss": t, "val_loss": v} for e, t, v in rows]
    nulls = tmp_path / "h.json"
    nulls.write_text(json.dumps({"rows": [*records, {"epoch": 10, "train_loss": None, "val_loss": None}]}))
    assert read_history(nulls)["epoch"].tolist() == list(range(10))
    assert diagnose(read_history(nulls)).verdict == "overfit"


def test_a_reglab_history_file_of_a_diverged_fit_says_diverged(tmp_path):
    """History.to_csv writes the blow-up's NaN as an empty cell (the row keeps its time); to_json marks it."""

    from reglab.report.histories import read_history

    history = _diverged_fit()
    for path in (history.to_csv(tmp_path / "h.csv"), history.to_json(tmp_path / "h.json")):
        with pytest.raises(UserError, match="the run diverged; lower the learning rate"):
            diagnose(read_history(path))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("first.csv", "epoch,loss,val_loss\n0,nan,nan\n"),
        ("first_inf.csv", "epoch,train_loss,val_loss\n0,inf,\n1,nan,\n"),
        ("keras.json", '{"loss": [NaN], "val_loss": [NaN]}'),
        ("reglab.json", '{"rows": [{"epoch": 0, "train_loss": null, "lr": 0.1, "time": 0.01}], '
                        '"$nonfinite": {"/rows/0/train_loss": "nan"}}'),
    ],
)
def test_a_run_that_diverged_in_its_first_epoch_says_diverged(tmp_path, name, content):
    from reglab.report.histories import read_history

    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=r"NaN or infinite from the first epoch on: the run diverged") as info:
        read_history(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize("drift", [0.0, 1e-9, -1e-9])
def test_a_constant_gap_is_not_growing(drift):
    """Finding 2: with val = train + 0.1 the gap's trend was +1.85e-16 (rounding), which made the run
    "over-fitting, gap growing"; a drift of 1e-9 per epoch flipped the verdict. Validation loss is still at
    its minimum and falling at the last epoch: the run is still improving."""
    e = np.arange(20)
    train = 1 / (e + 1)
    d = diagnose(pd.DataFrame({"epoch": e, "train_loss": train, "val_loss": train + 0.1 + drift * e}),
                 task="image")
    assert d.evidence.relative_gap >= d.thresholds.gap and abs(d.evidence.gap_trend) < 1e-6
    assert (d.verdict, d.rule) == ("underfit", "still-improving"), d.to_text()
    assert "(not growing, " in d.to_text() and "(growing" not in d.to_text()


def test_gap_growth_threshold_decides_what_is_growing():
    """The gap steps from 0.1 to 0.12 at epoch 15 (+2 % of the 1.0 validation loss)."""
    e = np.arange(20)
    val = np.full(20, 1.0)
    train = np.where(e < 15, 0.9, 0.88)
    h = pd.DataFrame({"epoch": e, "train_loss": train, "val_loss": val})
    d = diagnose(h, thresholds=Thresholds(gap=0.05))
    assert d.evidence.gap_trend == pytest.approx(0.02)
    assert (d.verdict, d.rule) == ("overfit", "gap-growing")
    assert "(growing, +2.0%; growing from +1%)" in d.to_text()
    d = diagnose(h, thresholds=Thresholds(gap=0.05, gap_growth=0.05))
    assert d.rule != "gap-growing" and "(not growing, +2.0%; growing from +5%)" in d.to_text()
    with pytest.raises(InvalidParameterError, match=r"'gap_growth' parameter of Thresholds"):
        Thresholds(gap_growth=-0.01)


def test_a_reglab_history_and_a_mapping_are_accepted():
    """Finding 7: diagnose(reglab.fit(...)) and a dict of lists were refused ("needs a pandas DataFrame")."""
    from reglab.train import History

    train, val, verdict, rule = CASES["overfit"]
    frame = _history(train, val)
    expected = diagnose(frame, task="image")
    history = History(frame.to_dict(orient="records"))
    got = diagnose(history, task="image")
    assert (got.verdict, got.rule, got.evidence) == (verdict, rule, expected.evidence)
    columns = {c: frame[c].tolist() for c in ("epoch", "train_loss", "val_loss")}
    assert diagnose(columns, task="image").evidence == expected.evidence
    # Keras's History.history: "loss" for the training loss, no epoch column (epochs 0, 1, ...).
    keras = {"loss": frame["train_loss"].tolist(), "val_loss": frame["val_loss"].tolist()}
    assert diagnose(keras, task="image").evidence == expected.evidence
    with pytest.raises(UserError, match=r"^diagnose: the mapping is not a table \(.*\); give one sequence"):
        diagnose({"train_loss": [1.0, 0.5, 0.4, 0.3, 0.2, 0.1], "val_loss": [1.0, 0.6]})


@pytest.mark.parametrize("bad", [[1.0, 0.5, 0.4], "history.csv", None])
def test_anything_else_is_one_line_naming_what_is_accepted(bad):
    with pytest.raises(UserError) as info:
        diagnose(bad)
    message = str(info.value)
    assert message.startswith("diagnose needs a pandas DataFrame, a reglab History (what reglab.fit "
                              "returns) or a mapping of column -> per-epoch values, not ")
    assert "read_history(path)" in message and "\n" not in message


def test_the_evidence_says_its_end_values_are_window_means():
    """'at the end it is 0.9922 (+0.0% from the lowest)' beside a lowest of 0.9627: the end is a mean of the
    last k epochs and the rise starts from the lowest k-epoch mean, which the text did not say."""
    e = np.arange(40)
    train = 1 / (e / 10 + 1)
    val = train + 0.02 + 0.03 * np.sin(e)
    d = diagnose(pd.DataFrame({"epoch": e, "train_loss": train, "val_loss": val}))
    assert d.evidence.window == 4
    assert d.evidence.final_val_loss == pytest.approx(val[-4:].mean())
    text = d.to_text()
    assert f"over the last 4 epochs it is {val[-4:].mean():.4g}" in text
    assert "above its lowest 4-epoch mean" in text and "from the lowest;" not in text


PLATEAU_ADVICE = [{"regularization_factor": 0.5}, {"capacity_factor": 2}, {}]


@pytest.mark.parametrize(
    ("train", "val", "extra"),
    [
        # Regression at its noise floor: loss 3.25 at the start, 2.25 (the noise variance) from epoch 10 on.
        (2.25 + np.exp(-E / 2), 2.3 + np.exp(-E / 2), {}),
        # Classification with 30 % wrong labels: it converged in a few epochs at 91 % of its first loss.
        (0.64 + 0.06 * np.exp(-E / 2), 0.635 + 0.06 * np.exp(-E / 2),
         {"train_accuracy": np.full(60, 0.68), "val_accuracy": np.full(60, 0.685)}),
        # Ten classes held at chance (ln 10) by too much weight decay: the same curves as pure-noise labels.
        (np.full(60, 2.303), np.full(60, 2.30), {}),
    ],
    ids=["noise-floor-regression", "label-noise", "at-chance"],
)
def test_a_flat_high_training_loss_is_under_fitting_converged_at_a_high_loss(train, val, extra):
    """A converged run whose training loss stays above half its first value was "under-fitting, little
    progress", advised like a run still falling: at a floor more epochs do not help, and the floor may be the
    data's noise, where the loss stays high however well the model fits."""
    d = diagnose(_history(train, val, **extra), batchnorm=True)
    assert (d.verdict, d.rule) == ("underfit", "high-plateau"), d.to_text()
    assert d.label == "under-fitting, converged at a high loss"
    assert d.evidence.train_progress > 0.5 and not still_falling(d.evidence, d.thresholds)
    # The experiment that tells bias from noise: less regularization, more capacity; else it is the floor.
    changes = [r.change for r in d.recommendations]
    assert changes == [*PLATEAU_ADVICE, {"max_dropout": 0.2}]
    text = d.to_text()
    assert text.startswith("Diagnosis: under-fitting, converged at a high loss (rule: high-plateau)")
    assert "train longer" not in text
    assert "at the data's noise floor: more regularization, more epochs or early stopping will not" in text
    assert "(flat), " in text


def test_still_falling_is_measured_against_the_runs_whole_fall():
    """Above a high floor a run far from converged falls little relative to its level (2.7 % here), but
    its last quarter carries 27 % of its fall; a converged one's last quarter carries almost none."""
    e = np.arange(40)
    slow = pd.DataFrame({"epoch": e, "train_loss": 2 - 0.005 * e, "val_loss": 2.1 - 0.005 * e})
    d = diagnose(slow)
    # 4-epoch means: 1.8625 three quarters in (epochs 26..29), 1.8125 at the end, 2.0 at the first epoch.
    assert d.evidence.train_recent_drop == pytest.approx(0.05 / 1.8625)
    assert d.evidence.train_recent_share == pytest.approx(0.05 / 0.1875)
    assert (d.verdict, d.rule) == ("underfit", "still-improving"), d.to_text()
    assert "(still falling), 27% of its whole fall made in the last quarter" in d.to_text()
    # Each of the two thresholds of the second clause decides.
    for thresholds in (Thresholds(min_drop=0.03), Thresholds(recent_share=0.3)):
        assert diagnose(slow, thresholds=thresholds).rule == "high-plateau"
    # A converged exponential to a floor of 2.2: 1.9 % over the last quarter but 4 % of its fall.
    e = np.arange(20)
    settled = pd.DataFrame({"epoch": e, "train_loss": 2.2 + np.exp(-e / 5), "val_loss": 2.3 + np.exp(-e / 5)})
    d = diagnose(settled)
    assert d.evidence.train_recent_drop > 0.01 and d.evidence.train_recent_share < 0.05
    assert (d.verdict, d.rule) == ("underfit", "high-plateau"), d.to_text()
    with pytest.raises(InvalidParameterError, match=r"'recent_share' parameter of Thresholds"):
        Thresholds(recent_share=-0.1)


def test_a_flat_high_loss_with_a_large_stable_gap_is_not_a_high_plateau():
    """The high plateau's advice (at a noise floor regularization will not help) holds only with train close
    to val; with a large gap that no longer grows the run keeps the general under-fit advice."""
    d = diagnose(_history(1.0 + 0.5 * np.exp(-E / 3), 1.4 + 0.5 * np.exp(-E / 3)))
    assert d.evidence.train_progress > 0.5 and d.evidence.relative_gap >= d.thresholds.gap
    assert (d.verdict, d.rule) == ("underfit", "little-progress"), d.to_text()
    assert "noise floor" not in d.to_text()


def _noisy_regression_fit(lr: float, epochs: int) -> tuple[pd.DataFrame, float]:
    """A linear model fit to y = x.w + noise (signal variance 1, noise sd 1.5), and the noise variance."""
    import torch

    from reglab.models import MLP
    from reglab.train import fit

    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, generator=g)
    w = w / w.norm()

    def split(n):
        x, noise = torch.randn(n, 5, generator=g), 1.5 * torch.randn(n, generator=g)
        return x, x @ w + noise, noise

    xt, yt, noise = split(400)
    xv, yv, _ = split(400)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        history = fit(MLP(5, 1, hidden=()), (xt, yt), (xv, yv), epochs=epochs, lr=lr, batch_size=32,
                      progress="off")
    return history.to_pandas(), float((noise**2).mean())


def test_a_real_fit_at_its_noise_floor_is_a_high_plateau_and_stopped_early_it_is_still_improving():
    """The same model and data: trained to convergence, the training loss sits at the noise variance (89 % of
    its first value, which read as under-fitting); stopped while falling, it is under-fit."""
    converged, floor = _noisy_regression_fit(lr=0.05, epochs=30)
    d = diagnose(converged)
    assert d.evidence.final_train_loss == pytest.approx(floor, rel=0.05)
    assert d.evidence.train_progress > 0.8 and d.evidence.relative_gap < 0.1
    assert (d.verdict, d.rule) == ("underfit", "high-plateau"), d.to_text()
    slow, _ = _noisy_regression_fit(lr=5e-4, epochs=20)
    d = diagnose(slow)
    assert d.evidence.final_train_loss > 1.1 * floor and d.evidence.train_recent_drop < d.thresholds.improving
    assert (d.verdict, d.rule) == ("underfit", "still-improving"), d.to_text()


def test_image_advice_does_not_recommend_flips_for_every_image():
    """A horizontal flip changes a digit's class (2 vs 5 mirrored, 7 vs a backward 7): the image advice
    names crops / shifts, and a flip only for classes a mirror keeps (what --verify tries is a crop)."""
    train, val, *_ = CASES["overfit"]
    d = diagnose(_history(train, val), task="image")
    action = next(r.action for r in d.recommendations if r.change.get("augment") == "image")
    assert "random crops / small shifts" in action
    assert "flips," not in action and "a horizontal flip only if a mirrored image keeps its class" in action
    assert "flip only if" in d.to_text()
