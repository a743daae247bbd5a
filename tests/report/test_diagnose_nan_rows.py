"""reglab diagnose and a NaN loss in a middle row (named, left out) or in the last rows (a divergence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from reglab.cli import main
from reglab.errors import UserError
from reglab.report.diagnose import diagnose
from reglab.report.histories import read_history

E = np.arange(20)
TRAIN = 2 * np.exp(-E / 5) + 0.1
VAL = TRAIN + 0.05 + 0.002 * np.maximum(E - 10, 0) ** 2


def _csv(path, val, train=TRAIN, na_rep="nan"):
    pd.DataFrame({"epoch": E, "train_loss": train, "val_loss": val}).to_csv(path, index=False, na_rep=na_rep)
    return path


def _without(epochs):
    keep = ~np.isin(E, epochs)
    return diagnose(pd.DataFrame({"epoch": E[keep], "train_loss": TRAIN[keep], "val_loss": VAL[keep]}))


def _same_judgement(d, reference):
    strip = {"nan_train_epochs": (), "nan_val_epochs": ()}
    assert (d.verdict, d.rule) == (reference.verdict, reference.rule)
    assert dataclasses.replace(d.evidence, **strip) == reference.evidence


def test_a_nan_validation_loss_mid_run_is_named_and_left_out(tmp_path):
    val = VAL.copy()
    val[[7, 12]] = [np.nan, np.inf]
    reference = _without([7, 12])
    for history in (read_history(_csv(tmp_path / "keras.csv", val)),  # written 'nan' / 'inf'
                    pd.DataFrame({"epoch": E, "train_loss": TRAIN, "val_loss": val})):
        d = diagnose(history)
        _same_judgement(d, reference)
        assert d.evidence.nan_val_epochs == (7, 12)
        assert d.findings[1].startswith("validation loss NaN or infinite at epochs 7, 12, finite after: left "
                                        "out of this diagnosis")
        assert d.findings[2:] == reference.findings[1:]


def test_a_nan_training_loss_mid_run_is_named(tmp_path):
    train = TRAIN.copy()
    train[5] = np.nan
    d = diagnose(read_history(_csv(tmp_path / "h.csv", VAL, train=train)))
    _same_judgement(d, _without([5]))
    assert d.findings[1].startswith("training loss NaN or infinite at epoch 5, finite after")


def test_a_reglab_history_csv_nan_mid_run_is_a_nan(tmp_path):
    """History.to_csv writes NaN as an empty cell; its rows have a time, so the empty cell is a NaN."""
    from reglab.train.history import History

    val = VAL.copy()
    val[7] = np.nan
    rows = [{"epoch": int(e), "train_loss": t, "val_loss": v, "time": 0.1} for e, t, v in zip(E, TRAIN, val)]
    h = History(rows)
    d = diagnose(read_history(h.to_csv(tmp_path / "h.csv")))
    assert d.evidence.nan_val_epochs == (7,)
    _same_judgement(d, _without([7]))


def test_an_empty_cell_mid_run_is_named_as_missing(tmp_path):
    """pandas writes a NaN as an empty cell: it may be one, so the diagnosis says which epoch it left out."""
    val = VAL.copy()
    val[7] = np.nan
    d = diagnose(read_history(_csv(tmp_path / "h.csv", val, na_rep="")))
    _same_judgement(d, _without([7]))
    assert d.findings[1].startswith("validation loss missing at epoch 7 (an empty or NA cell; pandas writes "
                                    "a NaN so): left out of this diagnosis")


@pytest.mark.parametrize("tail, what", [(1, "NaN"), (3, "NaN")])
def test_a_nan_validation_loss_at_the_end_is_a_divergence(tmp_path, tail, what, capsys):
    val = VAL.copy()
    val[-tail:] = np.nan
    path = _csv(tmp_path / "h.csv", val)
    with pytest.raises(UserError, match=rf"the validation loss is {what} from epoch {20 - tail} on"):
        diagnose(read_history(path))
    assert main(["diagnose", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the run diverged at its end; lower the learning rate" in err
    assert ("(the last epoch;" if tail == 1 else f"(the last {tail} epochs;") in err


def test_an_infinite_validation_loss_at_the_end_and_nan_throughout():
    val = VAL.copy()
    val[-1] = np.inf
    with pytest.raises(UserError, match="the validation loss is infinite from epoch 19 on"):
        diagnose(pd.DataFrame({"epoch": E, "train_loss": TRAIN, "val_loss": val}))
    with pytest.raises(UserError, match="NaN at every epoch while the training loss is finite: check the "
                                        "validation data"):
        diagnose(pd.DataFrame({"epoch": E, "train_loss": TRAIN, "val_loss": np.nan}))


def test_an_empty_last_validation_cell_is_named_and_the_epochs_before_are_judged(tmp_path):
    val = VAL.copy()
    val[-1] = np.nan
    d = diagnose(read_history(_csv(tmp_path / "h.csv", val, na_rep="")))
    _same_judgement(d, _without([19]))
    assert d.findings[1].startswith("validation loss missing at epoch 19, after the last epoch judged")
    assert "if it was a NaN, the run diverged at its end" in d.findings[1]


def test_a_lightning_log_validating_every_other_epoch_names_no_missing_epoch(tmp_path):
    """Lightning writes a NaN as 'nan'; its empty cells are epochs without validation, not NaNs."""
    rows = [f"{e},{2 * e},{t},\n" for e, t in zip(E, TRAIN)]
    rows += [f"{e},{2 * e + 1},,{v}\n" for e, v in zip(E, VAL) if e % 2]
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss,val_loss\n" + "".join(rows))
    d = diagnose(read_history(path))
    assert d.evidence.epochs == 10 and not any("missing" in f for f in d.findings)
