"""A regression log with train_mse / val_mse (or MAE) and no loss columns: that pair is read as its losses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reglab.cli import main
from reglab.errors import UserError
from reglab.report.diagnose import diagnose
from reglab.report.histories import read_history

E = np.arange(12)
TRAIN = 1.0 * np.exp(-E / 3) + 0.05
VAL = 0.3 + 0.8 * np.exp(-E / 3) + 0.01 * np.maximum(E - 4, 0) ** 2  # bottoms out near epoch 5, then rises


def test_mse_columns_are_read_as_the_losses_and_diagnosed_as_a_loss_file_would_be(tmp_path):
    path = tmp_path / "h.csv"
    frame = pd.DataFrame({"epoch": E, "train_mse": TRAIN, "val_mse": VAL, "train_mae": 2 * TRAIN})
    frame.to_csv(path, index=False)
    got = read_history(path)
    np.testing.assert_allclose(got["train_loss"], TRAIN, rtol=1e-12)
    np.testing.assert_allclose(got["val_loss"], VAL, rtol=1e-12)
    assert got.attrs["loss_columns"] == {"train_loss": "train_mse", "val_loss": "val_mse"}
    # The reference: the same curves under the loss names.
    reference = diagnose(pd.DataFrame({"epoch": E, "train_loss": TRAIN, "val_loss": VAL}))
    d = diagnose(got)
    assert (d.verdict, d.rule, d.evidence) == (reference.verdict, reference.rule, reference.evidence)
    assert d.findings[0] == ("no loss columns: train_mse and val_mse are read as the training and "
                             "validation loss")
    assert d.findings[1:] == reference.findings


def test_keras_and_lightning_spellings_and_mae(tmp_path):
    keras = tmp_path / "keras.json"
    keras.write_text(json.dumps({"mean_squared_error": list(TRAIN), "val_mean_squared_error": list(VAL)}))
    assert read_history(keras).attrs["loss_columns"] == {"train_loss": "mean_squared_error",
                                                         "val_loss": "val_mean_squared_error"}
    # Lightning: train and validation metrics on separate rows, with a step column.
    rows = [{"epoch": e, "step": 2 * e, "train_mae_epoch": t} for e, t in zip(E, TRAIN)]
    rows += [{"epoch": e, "step": 2 * e + 1, "val_mae": v} for e, v in zip(E, VAL)]
    lightning = tmp_path / "metrics.csv"
    pd.DataFrame(rows).to_csv(lightning, index=False)
    got = read_history(lightning)
    np.testing.assert_allclose(got["train_loss"], TRAIN, rtol=1e-12)
    np.testing.assert_allclose(got["val_loss"], VAL, rtol=1e-12)
    # A mapping (Keras History.history) goes through the same reader.
    d = diagnose({"mse": TRAIN.tolist(), "val_mse": VAL.tolist()})
    assert d.findings[0].startswith("no loss columns: mse and val_mse")


def test_loss_columns_win_over_error_columns(tmp_path):
    path = tmp_path / "h.csv"
    frame = pd.DataFrame({"loss": TRAIN, "val_loss": VAL, "mse": 3 * TRAIN, "val_mse": 3 * VAL})
    frame.to_csv(path, index=False)
    got = read_history(path)
    np.testing.assert_allclose(got["train_loss"], TRAIN, rtol=1e-12)
    assert "loss_columns" not in got.attrs and not diagnose(got).findings[0].startswith("no loss columns")


def test_a_diverged_mse_run_is_a_divergence(tmp_path):
    path = tmp_path / "h.csv"
    rows = "".join(f"{e},{t},{v}\n" for e, t, v in zip(E, TRAIN, VAL))
    text = "epoch,train_mse,val_mse\n" + rows + "12,nan,nan\n"
    path.write_text(text)
    with pytest.raises(UserError, match="the run diverged"):
        diagnose(read_history(path))


def test_other_metrics_are_refused_in_one_line_listing_the_columns(tmp_path, capsys):
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": E, "train_rmse": TRAIN, "val_rmse": VAL}).to_csv(path, index=False)
    assert main(["diagnose", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "lacks the column(s) train_loss, val_loss (found: epoch, train_rmse, val_rmse)" in err
    assert "train_mse / val_mse or train_mae / val_mae pair" in err


def test_the_cli_reads_an_mse_history(tmp_path, capsys):
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": E, "train_mse": TRAIN, "val_mse": VAL}).to_csv(path, index=False)
    assert main(["diagnose", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "overfit"
    assert out["findings"][0].startswith("no loss columns: train_mse and val_mse")
