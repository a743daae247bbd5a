"""History: rows, best epoch, CSV / JSON / pandas round trips."""

import json
import math

import pytest

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.train import History

ROWS = [
    {"epoch": 0, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5, "time": 0.1},
    {"epoch": 1, "train_loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.7, "time": 0.1},
    {"epoch": 2, "train_loss": 0.2, "val_loss": 0.8, "val_accuracy": 0.7, "time": 0.1},
    {"epoch": 3, "train_loss": 0.1, "val_loss": math.nan, "val_accuracy": 0.6, "time": 0.1},
]


def test_best_by_mode_first_on_ties_nan_never_wins():
    h = History(ROWS)
    assert h.best("val_loss")["epoch"] == 1
    assert h.best("val_accuracy")["epoch"] == 1  # tie with epoch 2: the first
    assert h.best("val_loss", mode="max")["epoch"] == 0
    with pytest.raises(
        InvalidParameterError, match=r"'monitor' parameter of History.best .*Did you mean 'val_loss'"
    ):
        h.best("val_los")
    with pytest.raises(UserError, match="no finite 'val_loss'"):
        History([{"epoch": 0, "val_loss": math.nan}]).best("val_loss")


def test_columns_in_csv_order_and_getitem():
    h = History([{"time": 1.0, "zz": 2, "epoch": 0, "val_loss": 0.3, "train_loss": 0.4}])
    assert h.columns == ["epoch", "train_loss", "val_loss", "time", "zz"]
    assert h["val_loss"] == [0.3]


def test_csv_and_json_round_trips(tmp_path):
    h = History(
        ROWS,
        stop_reason="EarlyStopping: x",
        best_epoch=1,
        monitor="val_loss",
        restarts=[{"restart": 0, "score": 0.7, "chosen": True}],
        test={"loss": 0.8},
    )
    back = History.from_json(h.to_json(tmp_path / "h.json"))
    assert back.equals(h, ignore=()) and json.dumps(back.to_dict()) == json.dumps(h.to_dict())
    assert (back.stop_reason, back.best_epoch, back.restarts, back.test) == (
        h.stop_reason,
        1,
        h.restarts,
        h.test,
    )
    csv = History.from_csv(h.to_csv(tmp_path / "h.csv"))
    assert csv.equals(h, ignore=()) and isinstance(csv["epoch"][0], int)
    assert (csv.stop_reason, csv.best_epoch, csv.monitor) == ("EarlyStopping: x", 1, "val_loss")
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == (
        "epoch,train_loss,val_loss,val_accuracy,time,best_epoch,monitor,stop_reason"
    )


def test_csv_keeps_run_facts_as_plain_columns_that_pandas_and_diagnose_read(tmp_path):
    import pandas as pd

    from reglab.report.histories import read_history

    reason = 'EarlyStopping: val_loss did not improve for 2 epochs (best 0.7, "x")'  # a comma and quotes
    path = History(ROWS, stop_reason=reason, best_epoch=1, monitor="val_loss").to_csv(tmp_path / "h.csv")
    frame = pd.read_csv(path)  # no comment= or skiprows: one header, one line per epoch
    assert frame.shape == (4, 8) and frame["best_epoch"].tolist() == [1] * 4
    assert frame["stop_reason"].tolist() == [reason] * 4 and frame["val_loss"].iloc[1] == 0.7
    back = History.from_csv(path)
    assert (back.stop_reason, back.best_epoch, back.monitor) == (reason, 1, "val_loss")
    assert type(back.best_epoch) is int and back.columns == History(ROWS).columns
    assert read_history(path)["val_loss"].tolist()[:3] == [0.9, 0.7, 0.8]
    # A run that ran all its epochs: stop_reason is an empty cell and reads back as None.
    back = History.from_csv(History(ROWS, best_epoch=1, monitor="val_loss").to_csv(tmp_path / "full.csv"))
    assert (back.stop_reason, back.best_epoch) == (None, 1)
    # Without run facts (a hand-built History) the CSV is as before: per-epoch columns only.
    header = History(ROWS).to_csv(tmp_path / "rows.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,val_accuracy,time"
    assert History.from_csv(tmp_path / "rows.csv").best_epoch is None


def test_to_pandas():
    frame = History(ROWS).to_pandas()
    assert list(frame.columns) == ["epoch", "train_loss", "val_loss", "val_accuracy", "time"]
    assert frame["train_loss"].tolist() == [1.0, 0.5, 0.2, 0.1]


def test_equals_ignores_time_only():
    a = History(ROWS)
    b = History([dict(r, time=9.0) for r in ROWS])
    assert a.equals(b) and not a.equals(b, ignore=())
    assert not a.equals(History(ROWS[:2]))


def test_to_json_is_strict_json_and_reads_back_non_finite_values_exactly(tmp_path):
    import json
    import math

    h = History([{"epoch": 0, "train_loss": 1.0, "val_loss": math.nan}, {"epoch": 1, "train_loss": math.inf,
                 "val_loss": -math.inf}], stop_reason="non-finite training loss (inf) at epoch 1, batch 0")
    path = h.to_json(tmp_path / "h.json")

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    data = json.loads(path.read_text(), parse_constant=refuse)  # RFC 8259: no NaN / Infinity tokens
    assert data["rows"][0]["val_loss"] is None and data["$nonfinite"]["/rows/1/train_loss"] == "inf"
    back = History.from_json(path)
    assert back.equals(h, ignore=()) and back.columns == h.columns and back.stop_reason == h.stop_reason
    assert back.rows[1]["val_loss"] == -math.inf


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("epoch,train_loss\n0,1.0\n", "is not JSON (line 1, column 1: Expecting value)"),  # a CSV
        ("[1, 2]", "holds an array, not a History"),
        ('{"loss": [1.0], "val_loss": [0.9]}',
         "is a JSON object without \"rows\" (keys: 'loss', 'val_loss')"),
        ('{"rows": 3}', '"rows" is a number, not an array of per-epoch objects'),
        ('{"rows": [1, 2]}', '"rows" is an array holding non-objects'),
        ('{"rows": [], "$nonfinite": 3}', "$nonfinite must be an object"),
    ],
)
def test_from_json_of_a_file_that_is_not_a_history_names_the_path(tmp_path, content, says):
    """Finding 8: History.from_json("h.csv") raised a bare JSONDecodeError without the path."""
    from reglab.train.history import HistoryFileError

    path = tmp_path / "h.csv"
    path.write_text(content)
    with pytest.raises(ValueError) as info:  # still a ValueError, as the JSONDecodeError was
        History.from_json(path)
    assert isinstance(info.value, HistoryFileError) and isinstance(info.value, UserError)
    message = str(info.value)
    assert message.startswith(f"History.from_json: {path}") and says in message, message
    assert "History.from_csv(path)" in message and "\n" not in message
    binary = tmp_path / "h.parquet"
    binary.write_bytes(b"PAR1\xff\xfe\x00")
    with pytest.raises(HistoryFileError, match=r"is not a JSON file \(not UTF-8 text\)"):
        History.from_json(binary)


def test_history_file_error_is_exported_where_users_catch_it(tmp_path):
    """reglab.HistoryFileError / reglab.train.HistoryFileError: catchable without the private module path."""
    import reglab
    import reglab.train
    from reglab.train.history import HistoryFileError

    assert reglab.HistoryFileError is HistoryFileError and reglab.train.HistoryFileError is HistoryFileError
    assert "HistoryFileError" in reglab.__all__ and "HistoryFileError" in reglab.train.__all__
    path = tmp_path / "h.csv"
    History([{"epoch": 0, "train_loss": 1.0}]).to_csv(path)
    with pytest.raises(reglab.HistoryFileError, match=r"^History\.from_json: .*h\.csv is not JSON"):
        History.from_json(path)
