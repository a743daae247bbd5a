"""A study's dataset file names its feature columns and its task; new settings keep old studies resumable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from reglab.data import load_csv
from reglab.errors import UserError
from reglab.study import Study
from reglab.study.execute import load_splits
from reglab.study.schema import parse_config
from reglab.study.storage import StudyStorage, default_url, study_table


def _frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    frame.insert(0, "customer", [f"c{i:04d}" for i in range(rows)])  # an ID column: text, not a feature
    frame["score"] = (frame["a"] > 0).astype(int) + 2 * (frame["b"] > 0).astype(int)  # 0..3, whole numbers
    return frame


def _study(tmp_path, **dataset):
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    return {"name": "cols", "dataset": {"path": str(path), "target": "score", **dataset},
            "model": {"hidden": [4]}, "training": {"epochs": 1, "batch_size": 64},
            "seeds": [0], "validation": {"kind": "holdout"}, "recipes": {"none": {}}}


def test_features_pick_the_columns_a_study_trains_on(tmp_path):
    """Without ``features`` a study could not drop an ID column: every other column was a feature."""
    with pytest.raises(UserError, match=r"customer"):
        load_splits(parse_config(_study(tmp_path)))
    config = parse_config(_study(tmp_path, features=["a", "b"]))
    splits = load_splits(config)
    reference = load_csv(tmp_path / "d.csv", "score", features=["a", "b"], seed=0)
    assert splits.feature_names == ["a", "b"] and splits.input_shape == (2,)
    assert torch.equal(splits.train.x, reference.train.x) and torch.equal(splits.test.y, reference.test.y)
    summary = Study(config).run(out=tmp_path / "s", progress=False)
    assert summary["recipes"]["none"]["status"] == "ok"


def test_task_overrides_what_the_targets_look_like(tmp_path):
    """Whole numbers 0..3 read as 4 classes; ``task: regression`` studies them as values (metric val_mse)."""
    classes = load_splits(parse_config(_study(tmp_path, features=["a", "b"])))
    assert classes.task == "classification" and classes.num_classes == 4
    config = parse_config(_study(tmp_path, features=["a", "b"], task="regression"))
    values = load_splits(config)
    assert values.task == "regression" and values.train.y.dtype == torch.float32
    summary = Study(config).run(out=tmp_path / "s", progress=False)
    assert summary["metric"] == "val_mse"


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"name": "digits", "features": ["a"]}, r"has its own target, features and task"),
        ({"name": "digits", "task": "regression"}, r"has its own target, features and task"),
        ({"path": "d.npz", "features": ["a"]}, r"a \.npz file has arrays, not columns: 'features'"),
        ({"path": "d.csv", "target": "y", "features": []}, r"features"),
        ({"path": "d.csv", "target": "y", "task": "ranking"}, r"task"),
    ],
)
def test_features_and_task_are_checked_where_they_are_given(dataset, message):
    config = {"name": "x", "dataset": dataset, "recipes": {"none": {}}}
    with pytest.raises(UserError, match=message):
        parse_config(config)


def test_a_study_stored_before_a_setting_existed_resumes(tmp_path):
    """The stored config is compared as today's schema reads it: without the new dataset keys it is the same
    study (their defaults), while a real change is still refused."""
    config = _study(tmp_path, features=["a", "b"])
    Study(config).run(out=tmp_path / "s", progress=False)
    store = StudyStorage(default_url(tmp_path / "s"))
    stored = json.loads(store.load_config())
    del stored["dataset"]["task"]  # as written before 'task' existed
    with store._write() as conn:
        conn.execute(study_table.update().values(config=json.dumps(stored, sort_keys=True)))
    store.close()
    again = Study(config).run(out=tmp_path / "s", progress=False)
    assert again["recipes"]["none"]["status"] == "ok"
    changed = {**config, "seeds": [0, 1]}
    with pytest.raises(UserError, match=r"holds a different study config"):
        Study(changed).run(out=tmp_path / "s", progress=False)


def _commented_csv(path, sep=","):
    """_frame's numbers with '#' comment lines (a header note, one between the rows): pandas reads them as
    rows unless told comment='#'."""
    frame = _frame().drop(columns="customer")
    lines = frame.to_csv(index=False, sep=sep).splitlines()
    lines = ["# exported 2024-01-01; score is the label", *lines[:60], "# second batch", *lines[60:]]
    path.write_text("\n".join(lines) + "\n")
    return frame


def test_read_options_reach_the_csv_reader_of_a_study(tmp_path):
    """A study could not pass pandas.read_csv keywords: a CSV with '#' comment lines could not be studied."""
    frame = _commented_csv(tmp_path / "d.csv")
    config = {"name": "opts", "dataset": {"path": str(tmp_path / "d.csv"), "target": "score"},
              "model": {"hidden": [4]}, "training": {"epochs": 1, "batch_size": 64},
              "seeds": [0], "validation": {"kind": "holdout"}, "recipes": {"none": {}}}
    with pytest.raises(UserError, match=r"d\.csv"):  # the comment line is the header: no column 'score'
        Study(config).run(out=tmp_path / "without", progress=False)
    config["dataset"]["read_options"] = {"comment": "#"}
    splits = load_splits(parse_config(config))
    # The reference: the same numbers with no comment lines, loaded by the library.
    frame.to_csv(tmp_path / "plain.csv", index=False)
    reference = load_csv(tmp_path / "plain.csv", "score", seed=0)
    assert splits.feature_names == ["a", "b"] and len(splits.train) == len(reference.train)
    assert torch.equal(splits.train.x, reference.train.x) and torch.equal(splits.test.y, reference.test.y)
    summary = Study(config).run(out=tmp_path / "s", progress=False)
    assert summary["recipes"]["none"]["status"] == "ok"
    # A .tsv keeps its tab separator when read_options are given (load() sets it only without them).
    _commented_csv(tmp_path / "d.tsv", sep="\t")
    tsv = {**config["dataset"], "path": str(tmp_path / "d.tsv")}
    tab = load_splits(parse_config({**config, "dataset": tsv}))
    assert torch.equal(tab.train.x, reference.train.x)


def test_read_options_are_part_of_the_study_and_old_studies_resume(tmp_path):
    _commented_csv(tmp_path / "d.csv")
    dataset = {"path": str(tmp_path / "d.csv"), "target": "score", "read_options": {"comment": "#"}}
    config = {"name": "opts", "dataset": dataset, "model": {"hidden": [4]},
              "training": {"epochs": 1, "batch_size": 64}, "seeds": [0], "validation": {"kind": "holdout"},
              "recipes": {"none": {}}}
    Study(config).run(out=tmp_path / "s", progress=False)
    changed = {**config, "dataset": {**dataset, "read_options": {"comment": "#", "na_values": ["?"]}}}
    with pytest.raises(UserError, match=r"holds a different study config"):
        Study(changed).run(out=tmp_path / "s", progress=False)
    # A study stored before read_options existed: its config has no such key, and it still resumes.
    (tmp_path / "plain.csv").write_text(_frame().drop(columns="customer").to_csv(index=False))
    plain = {**config, "dataset": {"path": str(tmp_path / "plain.csv"), "target": "score"}}
    Study(plain).run(out=tmp_path / "old", progress=False)
    store = StudyStorage(default_url(tmp_path / "old"))
    stored = json.loads(store.load_config())
    assert stored["dataset"].pop("read_options") is None
    with store._write() as conn:
        conn.execute(study_table.update().values(config=json.dumps(stored, sort_keys=True)))
    store.close()
    assert Study(plain).run(out=tmp_path / "old", progress=False)["recipes"]["none"]["status"] == "ok"


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"path": "d.csv", "target": "y", "read_options": {"na_valus": ["?"]}},
         r"^config: dataset\.read_options\.na_valus: 'na_valus' is not a pandas\.read_csv keyword .* "
         r"Did you mean 'na_values'\?$"),
        ({"path": "d.csv", "target": "y", "read_options": {"filepath_or_buffer": "e.csv"}},
         r"^config: dataset\.read_options\.filepath_or_buffer: the file to read is the dataset's 'path'"),
        ({"path": "d.csv", "target": "y", "read_options": {"chunksize": 10}},  # load_csv: an AttributeError
         r"^config: dataset\.read_options\.chunksize: .chunksize. makes pandas\.read_csv return the file"),
        ({"path": "d.csv", "target": "y", "read_options": ["comment"]},
         r"^config: dataset\.read_options: Input should be a valid dictionary"),
        ({"name": "digits", "read_options": {"comment": "#"}}, r"'read_options', 'x_key' and 'y_key' go"),
        ({"path": "d.npz", "read_options": {"comment": "#"}}, r"for a CSV file \(\.csv, \.tsv\) only"),
        ({"path": "d.parquet", "target": "y", "read_options": {}}, r"for a CSV file \(\.csv, \.tsv\) only"),
    ],
)
def test_read_options_are_checked_at_config_load(dataset, message):
    with pytest.raises(UserError, match=message) as caught:
        parse_config({"name": "x", "dataset": dataset, "recipes": {"none": {}}})
    assert "\n" not in str(caught.value)
