"""read_history: reglab CSV/JSON, Keras CSVLogger and History.history, Lightning metrics.csv, and errors."""

from __future__ import annotations

import collections
import csv
import json

import numpy as np
import pytest

from reglab.errors import UserError
from reglab.report.diagnose import diagnose
from reglab.report.histories import read_history

TRAIN = [2.0, 1.2, 0.8, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03]
VAL = [2.1, 1.4, 1.0, 0.9, 0.95, 1.05, 1.2, 1.35, 1.5, 1.7]
TACC = [0.3, 0.55, 0.7, 0.8, 0.88, 0.93, 0.96, 0.98, 0.99, 1.0]
VACC = [0.28, 0.5, 0.62, 0.66, 0.67, 0.67, 0.66, 0.66, 0.65, 0.65]


def _write_keras_csvlogger(path, logs_per_epoch):
    """What keras.callbacks.CSVLogger writes: 'epoch' (0-based) then sorted keys, csv.excel dialect."""
    keys = sorted(logs_per_epoch[0])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *keys], dialect=csv.excel)
        writer.writeheader()
        for epoch, logs in enumerate(logs_per_epoch):
            row = collections.OrderedDict({"epoch": epoch})
            row.update((k, logs.get(k, "NA")) for k in keys)
            writer.writerow(row)


def _write_lightning_metrics(path, rows):
    """What Lightning's CSVLogger writes: one row per log_metrics call, union of keys, empty cells."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(keys))
        writer.writeheader()
        writer.writerows(rows)


def test_keras_csvlogger_file(tmp_path):
    p = tmp_path / "training.log"
    _write_keras_csvlogger(p, [
        {"loss": t, "val_loss": v, "accuracy": a, "val_accuracy": va}
        for t, v, a, va in zip(TRAIN, VAL, TACC, VACC)
    ])
    assert p.read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    h = read_history(p)
    assert h["epoch"].tolist() == list(range(10))
    np.testing.assert_allclose(h["train_loss"], TRAIN)
    np.testing.assert_allclose(h["val_loss"], VAL)
    np.testing.assert_allclose(h["train_accuracy"], TACC)
    np.testing.assert_allclose(h["val_accuracy"], VACC)
    d = diagnose(h)
    assert d.verdict == "overfit" and d.evidence.best_epoch == 3  # Keras epochs count from 0


def test_keras_na_cells_are_missing_values(tmp_path):
    p = tmp_path / "log.csv"
    logs = [{"loss": t, "val_loss": v} for t, v in zip(TRAIN, VAL)]
    logs[0] = {"loss": TRAIN[0]}  # no validation in epoch 0: Keras writes NA
    _write_keras_csvlogger(p, [{"loss": 0, "val_loss": 0}, *logs[1:]])
    text = p.read_text().splitlines()
    text[1] = f"0,{TRAIN[0]},NA"
    p.write_text("\n".join(text) + "\n")
    assert read_history(p)["epoch"].tolist() == list(range(1, 10))


def test_lightning_metrics_csv_rows_are_merged_per_epoch(tmp_path):
    # self.log("train_loss", on_step=True, on_epoch=True); self.log("val_loss"); self.log("val_acc")
    rows, step = [], 0
    for epoch in range(10):
        for _ in range(2):
            step += 50
            rows.append({"epoch": epoch, "step": step - 1, "train_loss_step": TRAIN[epoch] * 1.1})
        rows.append({"epoch": epoch, "step": step - 1, "val_loss": VAL[epoch], "val_acc": VACC[epoch]})
        rows.append({"epoch": epoch, "step": step - 1, "train_loss_epoch": TRAIN[epoch]})
    p = tmp_path / "metrics.csv"
    _write_lightning_metrics(p, rows)
    assert p.read_text().splitlines()[:3] == [
        "epoch,step,train_loss_step,val_loss,val_acc,train_loss_epoch",
        f"0,49,{TRAIN[0] * 1.1},,,",
        f"0,99,{TRAIN[0] * 1.1},,,",
    ]
    h = read_history(p)
    assert h["epoch"].tolist() == list(range(10))
    np.testing.assert_allclose(h["train_loss"], TRAIN)  # the _epoch value wins over _step
    np.testing.assert_allclose(h["val_loss"], VAL)
    np.testing.assert_allclose(h["val_accuracy"], VACC)
    assert "train_loss_step" not in h.columns


def test_lightning_step_only_metric_is_averaged_over_the_epoch(tmp_path):
    rows = []
    for epoch in range(6):
        rows.append({"epoch": epoch, "step": 2 * epoch, "train_loss": 1.0 + epoch})
        rows.append({"epoch": epoch, "step": 2 * epoch + 1, "train_loss": 2.0 + epoch})
        rows.append({"epoch": epoch, "step": 2 * epoch + 1, "val_loss": 0.5})
    p = tmp_path / "metrics.csv"
    _write_lightning_metrics(p, rows)
    h = read_history(p)
    np.testing.assert_allclose(h["train_loss"], [1.5 + e for e in range(6)])


def test_reglab_json_records_and_keras_history_dict(tmp_path):
    records = [{"epoch": e + 1, "train_loss": t, "val_loss": v, "lr": 0.01} for e, (t, v) in
               enumerate(zip(TRAIN, VAL))]
    (tmp_path / "h.json").write_text(json.dumps({"epochs": records}))
    h = read_history(tmp_path / "h.json")
    assert h["epoch"].tolist() == list(range(1, 11)) and h["lr"].tolist() == [0.01] * 10
    (tmp_path / "k.json").write_text(json.dumps({"loss": TRAIN, "val_loss": VAL}))
    h = read_history(tmp_path / "k.json")
    assert h["epoch"].tolist() == list(range(10))
    np.testing.assert_allclose(h["val_loss"], VAL)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"history file not found: .*missing\.csv; pass a CSV or JSON file"),
        ("", r"is empty"),
        ("{not json", r"is not valid JSON \(line 1"),
        ("epoch,foo,bar\n0,1,2\n1,1,2\n",
         r"lacks the column\(s\) train_loss, val_loss \(found: epoch, foo, bar\)"),
        ("epoch,train_loss,val_loss\n0,1.0,abc\n", r"column 'val_loss' holds a non-number 'abc' at row 1"),
        (b"\xff\xfe\x00\x01binary", r"cannot read history file"),
    ],
)
def test_bad_files_give_one_line_user_errors(tmp_path, content, message):
    p = tmp_path / "missing.csv"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        read_history(p)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("loss\n1.0\n0.5\n", "(found: loss)"),  # pandas' sniffer split it at the 's': 'epoch, lo, Unnamed: 1'
        ("train_loss\n1.0\n0.5\n", "(found: train_loss)"),
        ("epoch,loss\n0,1.0\n1,0.5\n", "(found: epoch, loss)"),
        ("epoch;loss\n0;1.0\n1;0.5\n", "(found: epoch, loss)"),
        ("epoch\tloss\n0\t1.0\n1\t0.5\n", "(found: epoch, loss)"),
    ],
)
def test_a_file_without_validation_loss_names_the_columns_it_has(tmp_path, content, found):
    """The error lists the file's own columns: one column is not split at a letter, no 'epoch' is added."""
    p = tmp_path / "h.csv"
    p.write_text(content)
    with pytest.raises(UserError, match="lacks the column") as info:
        read_history(p)
    assert found in str(info.value)


def test_a_history_fit_without_validation_data_says_to_log_a_validation_loss(tmp_path):
    """The error told a user whose run had no validation data to rename a column."""
    import torch

    import reglab

    splits = reglab.load_data("digits", seed=0)
    torch.manual_seed(0)
    history = reglab.fit(reglab.MLP(64, 10, hidden=(8,)), splits.train, epochs=2, seed=0, progress="off")
    with pytest.raises(UserError) as info:
        read_history(history.to_csv(tmp_path / "h.csv"))
    message = str(info.value)
    assert "lacks the column(s) val_loss (found: epoch, train_loss, train_accuracy," in message
    assert "log one every epoch (reglab.fit with validation data" in message
    assert "name the training loss" not in message


def test_reglab_history_files_round_trip(tmp_path):
    from reglab.train.history import History

    h = History([{"epoch": e, "train_loss": t, "val_loss": v, "train_accuracy": a, "val_accuracy": va,
                  "lr": 0.01} for e, (t, v, a, va) in enumerate(zip(TRAIN, VAL, TACC, VACC))], best_epoch=3)
    for path in (h.to_json(tmp_path / "h.json"), h.to_csv(tmp_path / "h.csv")):
        got = read_history(path)
        assert got["epoch"].tolist() == list(range(10))
        np.testing.assert_allclose(got["val_loss"], VAL)
        np.testing.assert_allclose(got["train_accuracy"], TACC)


def test_json_that_is_not_a_table(tmp_path):
    (tmp_path / "h.json").write_text('"just a string"')
    with pytest.raises(UserError, match="JSON that is not a table"):
        read_history(tmp_path / "h.json")


def test_directory_is_not_a_history(tmp_path):
    with pytest.raises(UserError, match="is not a file"):
        read_history(tmp_path)


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ('{"/rows/3/train_loss": "nan"}', r"\$nonfinite entry '/rows/3/train_loss' points at nothing"),
        ('{"/rows/0/train_loss": "NaN"}', r"\$nonfinite entry '/rows/0/train_loss' has the kind \"NaN\""),
        ('"nan"', r"\$nonfinite must be an object"),
    ],
)
def test_a_malformed_nonfinite_block_is_one_user_error_naming_the_file(tmp_path, marks, message):
    """It raised IndexError / KeyError / AttributeError from loads_exact, a traceback in diagnose."""
    p = tmp_path / "h.json"
    p.write_text('{"rows": [{"epoch": 0, "train_loss": null, "val_loss": 1.0}], "$nonfinite": ' + marks + "}")
    with pytest.raises(UserError, match=f"history file {p}: {message}") as info:
        read_history(p)
    assert "\n" not in str(info.value)


def test_two_keras_runs_appended_to_one_log_are_refused_not_averaged(tmp_path):
    """CSVLogger(append=True) and a rerun script: epochs 0..9 twice, no step column. The rows were merged per
    epoch as if Lightning had logged them, and diagnose judged the mean of the two runs (its lowest validation
    loss was neither run's)."""
    p = tmp_path / "training.log"
    first = [{"loss": t, "val_loss": v} for t, v in zip(TRAIN, VAL)]
    _write_keras_csvlogger(p, first)
    again = tmp_path / "again.log"
    _write_keras_csvlogger(again, [{"loss": t, "val_loss": v + 0.5} for t, v in zip(TRAIN, VAL)])
    # What Keras appends on the second run: the rows without the header (the file is not empty).
    p.write_text(p.read_text() + "".join(again.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(UserError) as info:
        read_history(p)
    assert str(info.value) == (
        f"{p} numbers epoch 0 twice (rows 1 and 11) and has no 'step' column: two runs appended to one log "
        "(Keras CSVLogger(append=True))? keep one run's rows."
    )
    # Each run alone reads as written.
    np.testing.assert_allclose(read_history(again)["val_loss"], np.add(VAL, 0.5))
