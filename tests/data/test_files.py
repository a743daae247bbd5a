import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import LabelEncoder
from torch.utils.data import TensorDataset

from reglab._validation import InvalidParameterError
from reglab.data import from_dataset, from_frame, from_tensors, load, load_csv, load_npz, load_parquet
from reglab.errors import UserError


def _frame(n=40):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "income": rng.normal(50, 10, n),
            "label": np.array(["cat", "dog", "eel"])[np.arange(n) % 3],
            "price": rng.normal(100, 20, n),
        }
    )


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "pets.csv"
    _frame().to_csv(path, index=False)
    return path


def test_csv_classification_with_string_labels(csv):
    d = load_csv(csv, target="label", features=["age", "income"], scale=False, seed=0)
    assert d.task == "classification" and d.classes == ["cat", "dog", "eel"] and d.num_classes == 3
    assert d.feature_names == ["age", "income"] and d.name == "pets.csv" and d.input_shape == (2,)
    frame = _frame()
    codes = LabelEncoder().fit_transform(frame["label"])
    for split in (d.train, d.val, d.test):  # each row keeps its own encoded label
        for (age, income), label in zip(split.x.tolist(), split.y.tolist()):
            row = frame.index[(frame["age"] == age) & np.isclose(frame["income"], income, atol=1e-4)][0]
            assert label == codes[row]


def test_csv_task_inference_and_override(csv):
    assert load_csv(csv, target="price", features=["age"]).task == "regression"
    # Integers with at most MAX_CLASSES (50) distinct values are classes; more are a quantity.
    few = load_csv(csv, target="age", features=["income"], val_size=0, test_size=0)
    assert few.task == "classification" and few.classes == sorted(set(_frame()["age"].tolist()))
    many = from_tensors(np.random.default_rng(0).normal(size=(120, 2)), np.arange(120) * 3)
    assert many.task == "regression"
    small = load_csv(csv, target="label", features=["income"])
    assert small.task == "classification"
    forced = load(csv, target="price", features=["age", "income"], task="regression", scale_y=True)
    assert forced.y_scaler is not None and forced.train.y.dtype == torch.float32


def test_load_dispatches_on_suffix_and_formats_agree(csv, tmp_path):
    parquet = tmp_path / "pets.parquet"
    _frame().to_parquet(parquet)
    a = load(str(csv), target="label", seed=3)
    b = load_parquet(parquet, target="label", seed=3)
    assert torch.allclose(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert a.feature_names == ["age", "income", "price"]


def test_missing_file(tmp_path):
    expected = r"CSV file not found: '.*nope\.csv' \(looked at '.*'\); check the path\."
    with pytest.raises(UserError, match=expected):
        load(str(tmp_path / "nope.csv"), target="label")
    with pytest.raises(UserError, match="NPZ file not found"):
        load_npz(tmp_path / "nope.npz")


def test_missing_target_column_lists_columns(csv):
    with pytest.raises(UserError) as err:
        load_csv(csv, target="lable")
    assert str(err.value) == (
        "The target column 'lable' is not in pets.csv; its columns are 'age', 'income', 'label', 'price'."
        " Did you mean 'label'?"
    )
    expected = "The feature column 'incme' is not in pets.csv.*Did you mean 'income'"
    with pytest.raises(UserError, match=expected):
        load_csv(csv, target="label", features=["age", "incme"])


def test_non_numeric_feature_column(tmp_path):
    frame = _frame().assign(color=["red", "blue"] * 20)
    frame.to_csv(tmp_path / "c.csv", index=False)
    expected = r"The feature column .color. of c.csv is not numeric \(dtype (object|str); row 0 holds .red.\)"
    with pytest.raises(UserError, match=expected):
        load_csv(tmp_path / "c.csv", target="label")
    # A mostly numeric column: the message quotes the value that is not a number, not the first one.
    frame = _frame().assign(size=["2.43"] * 7 + ["abc"] + ["1.5"] * 32)
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UserError, match=r"column 'size' of d.csv is not numeric \(dtype (object|str); row 7 "
                       r"holds 'abc'\)"):
        load_csv(tmp_path / "d.csv", target="label")


def test_nan_values_named_with_row_count(tmp_path):
    frame = _frame()
    frame.loc[[3, 7, 8], "income"] = np.nan
    frame.to_csv(tmp_path / "n.csv", index=False)
    expected = r"The feature column 'income' of n.csv has missing values in 3 row\(s\) \(first at row 3\)"
    with pytest.raises(UserError, match=expected):
        load_csv(tmp_path / "n.csv", target="label")
    x = np.ones((20, 2))
    x[5, 1] = np.nan
    expected = r"The inputs of tensors have NaN or infinite values in 1 row\(s\) \(first at row 5\)"
    with pytest.raises(UserError, match=expected):
        from_tensors(x, np.arange(20) % 2)


def test_single_class_and_too_few_rows(tmp_path):
    frame = _frame().assign(label="cat")
    frame.to_csv(tmp_path / "one.csv", index=False)
    expected = r"The target of one.csv \(column 'label'\) has a single class \('cat'\)"
    with pytest.raises(UserError, match=expected):
        load_csv(tmp_path / "one.csv", target="label")
    _frame(6).to_csv(tmp_path / "six.csv", index=False)
    expected = "too few rows for stratified splits: the val split gets 1 rows but there are 3"
    with pytest.raises(UserError, match=expected):
        load_csv(tmp_path / "six.csv", target="label")


def test_regression_target_must_be_numeric(csv):
    with pytest.raises(UserError, match="is not numeric .* so it cannot be regressed"):
        load_csv(csv, target="label", task="regression")
    with pytest.raises(InvalidParameterError, match="'task' parameter of loading pets.csv .* must be one of"):
        load_csv(csv, target="label", task="clasification")


def test_npz_keys(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", inputs=rng.normal(size=(30, 4)), y=np.arange(30) % 2)
    with pytest.raises(UserError, match=r"d.npz has no array 'x' \(x_key\); its arrays are 'inputs', 'y'"):
        load_npz(tmp_path / "d.npz")
    d = load(str(tmp_path / "d.npz"), x_key="inputs", val_size=5, test_size=5)
    assert (len(d.train), d.input_shape, d.num_classes) == (20, (4,), 2)


def test_from_tensors_and_from_dataset_agree():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 1, 3, 3, generator=g), torch.arange(50) % 5
    a = from_tensors(x, y, seed=4)
    b = from_dataset(TensorDataset(x, y), seed=4)
    assert a.input_shape == (1, 3, 3) and a.train.x.shape[1:] == (1, 3, 3)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert b.name == "TensorDataset"
    reg = from_tensors(torch.randn(30, 2, generator=g), torch.randn(30, generator=g))
    assert reg.task == "regression"
    with pytest.raises(UserError, match="TensorDataset must yield \\(x, y\\) pairs; item 0 is a tuple of 1"):
        from_dataset(TensorDataset(x))


def test_empty_and_header_only_files_have_no_rows(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b,label\n")
    for name in ("empty.csv", "header.csv"):
        path = tmp_path / name
        with pytest.raises(UserError, match=rf"^CSV file '{path}' has no rows; "):
            load_csv(path, target="label")
        with pytest.raises(UserError, match="has no rows"):
            load(str(path), target="label")
    _frame().iloc[:0].to_parquet(tmp_path / "none.parquet")
    with pytest.raises(UserError, match=r"Parquet file '.*none\.parquet' has no rows"):
        load_parquet(tmp_path / "none.parquet", target="label")
    with pytest.raises(UserError, match=r"^df has no rows"):
        from_frame(_frame().iloc[:0], "label", name="df")


def test_garbage_files_name_the_file(tmp_path):
    for name in ("garbage.npz", "garbage.parquet"):
        (tmp_path / name).write_bytes(b"\x00garbage\xff")
    with pytest.raises(UserError, match=r"^cannot read the NPZ file '.*garbage\.npz': it is not a NumPy"):
        load_npz(tmp_path / "garbage.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)  # a truncated zip archive
    with pytest.raises(UserError, match=r"^cannot read the NPZ file '.*broken\.npz'"):
        load_npz(tmp_path / "broken.npz")
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(UserError, match=r"^cannot read the NPZ file '.*objects\.npz': Object arrays cannot"):
        load_npz(tmp_path / "objects.npz")
    with pytest.raises(UserError, match=r"^cannot read the Parquet file '.*garbage\.parquet': "):
        load_parquet(tmp_path / "garbage.parquet", target="label")
    (tmp_path / "latin1.csv").write_bytes("a,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"^cannot read the CSV file '.*latin1\.csv': 'utf-8' codec"):
        load_csv(tmp_path / "latin1.csv", target="label")


def test_parquet_columns_are_named_like_csv_ones(tmp_path):
    _frame().to_parquet(tmp_path / "p.parquet")
    with pytest.raises(UserError, match=r"feature column 'agee' is not in p\.parquet.*Did you mean 'age'"):
        load_parquet(tmp_path / "p.parquet", target="label", features=["agee"])
    with pytest.raises(UserError, match=r"The target column 'lable' is not in p\.parquet"):
        load_parquet(tmp_path / "p.parquet", target="lable", features=["age"])


def test_a_directory_is_not_a_data_file(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(UserError, match=r"^CSV path '.*folder\.csv' is a directory, not a file"):
        load_csv(tmp_path / "folder.csv", target="label")
    with pytest.raises(UserError, match=r"is a directory, not a data file; give a \.csv/"):
        load(str(tmp_path), target="label")
    with pytest.raises(UserError, match=r"is a directory, not a data file"):
        load(tmp_path, target="label")


def test_tensors_without_rows_are_refused():
    from reglab.data import from_tensors

    with pytest.raises(UserError, match=r"^tensors has no rows \(x of shape \(0, 3\)\); nothing to split"):
        from_tensors(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("reader", ["csv", "parquet"])
def test_the_target_among_the_features_is_refused_not_leaked(tmp_path, reader):
    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.linspace(0, 1, 20), "y": [0, 1] * 10})
    path = tmp_path / f"t.{reader}"
    frame.to_csv(path, index=False) if reader == "csv" else frame.to_parquet(path)
    read = load_csv if reader == "csv" else load_parquet
    with pytest.raises(UserError) as err:
        read(path, target="y", features=["a", "y"])
    assert str(err.value) == (
        f"t.{reader}: the target column 'y' is also listed in features; the label would be an input. "
        "Remove it from features."
    )
    with pytest.raises(UserError, match=rf"^t.{reader}: features lists 'a' more than once\.$"):
        read(path, target="y", features=["a", "a"])
    with pytest.raises(UserError, match=r"features must be a list of column names; got the string 'a'"):
        read(path, target="y", features="a")
    assert read(path, target="y", features=["a"]).feature_names == ["a"]
