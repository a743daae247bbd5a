"""CSV files as users write them: other separators, spaces after commas, an index column; read_options."""

import numpy as np
import pandas as pd
import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.data import load, load_csv
from reglab.errors import UserError

RNG = np.random.default_rng(0)
FRAME = pd.DataFrame({
    "a": RNG.normal(size=30).round(4),
    "b": RNG.integers(0, 9, 30),
    "species": np.array(["setosa", "versicolor", "virginica"])[np.arange(30) % 3],
})


def _reference(tmp_path, **kw):
    FRAME.to_csv(tmp_path / "ref.csv", index=False)
    return load_csv(tmp_path / "ref.csv", target="species", **kw)


def _same(a, b):
    assert a.feature_names == b.feature_names and a.classes == b.classes
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).x, getattr(b, part).x)
        assert torch.equal(getattr(a, part).y, getattr(b, part).y)


@pytest.mark.parametrize("sep", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_a_csv_with_another_separator_is_read_with_it(tmp_path, sep):
    # Before: one column 'a;b;species' and "The target column 'species' is not in ... Did you mean
    # 'a;b;species'?"
    FRAME.to_csv(tmp_path / "d.csv", index=False, sep=sep)
    _same(load(str(tmp_path / "d.csv"), target="species"), _reference(tmp_path))


def test_a_semicolon_file_with_decimal_commas_is_read_as_numbers(tmp_path):
    rows = "".join(f"{str(r.a).replace('.', ',')};{r.b};{r.species}\n" for r in FRAME.itertuples())
    (tmp_path / "d.csv").write_text("a;b;species\n" + rows)
    _same(load_csv(tmp_path / "d.csv", target="species"), _reference(tmp_path))
    # A ';' file with decimal points keeps them: decimal="," would turn 'a' into text.
    FRAME.to_csv(tmp_path / "points.csv", index=False, sep=";")
    _same(load_csv(tmp_path / "points.csv", target="species"), _reference(tmp_path))


def test_a_separator_given_in_read_options_is_kept(tmp_path):
    FRAME.to_csv(tmp_path / "d.csv", index=False, sep=";")
    with pytest.raises(UserError, match=r"its columns are 'a;b;species'"):  # the user's own choice stands
        load_csv(tmp_path / "d.csv", target="species", read_options={"sep": ","})


@pytest.mark.parametrize("options", [{"chunksize": 2}, {"iterator": True}])
def test_read_options_that_read_the_file_in_pieces_are_refused_in_one_line(tmp_path, options):
    """read_csv returned a reader, and load_csv failed on it with an AttributeError traceback."""
    FRAME.to_csv(tmp_path / "d.csv", index=False)
    key = next(iter(options))
    with pytest.raises(InvalidParameterError, match=rf"cannot hold {key}=.*return the file in pieces") as err:
        load_csv(tmp_path / "d.csv", target="species", read_options=options)
    assert "\n" not in str(err.value)
    whole = load_csv(tmp_path / "d.csv", target="species", read_options={"iterator": False})
    _same(whole, _reference(tmp_path))


def test_spaces_after_the_separator_are_not_part_of_names_or_values(tmp_path):
    text = "a, b, species\n" + "".join(f"{r.a}, {r.b}, {r.species}\n" for r in FRAME.itertuples())
    (tmp_path / "d.csv").write_text(text)
    _same(load_csv(tmp_path / "d.csv", target="species"), _reference(tmp_path))


def test_a_blank_cell_is_a_missing_value(tmp_path):
    text = "a,b,species\n" + "".join(
        f"{' ' if i == 4 else r.a},{r.b},{r.species}\n" for i, r in enumerate(FRAME.itertuples())
    )
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(UserError, match=r"column 'a' of d.csv has missing values in 1 row\(s\) \(first at "
                       r"row 4\)"):
        load_csv(tmp_path / "d.csv", target="species")


def test_the_index_column_to_csv_writes_is_not_taken_for_a_feature(tmp_path):
    FRAME.to_csv(tmp_path / "d.csv")  # index=True: a first column without a name, 0..n-1
    with pytest.raises(UserError) as err:
        load_csv(tmp_path / "d.csv", target="species")
    assert str(err.value) == (
        "Column 1 of d.csv has no name in the header (pandas calls it 'Unnamed: 0'): often the row index "
        "DataFrame.to_csv writes, which as a feature would hand the model each row's position. Write the "
        "file with to_csv(..., index=False) or name the column; or pass read_options={'index_col': 0} or "
        "features=[...]."
    )
    _same(load_csv(tmp_path / "d.csv", target="species", read_options={"index_col": 0}), _reference(tmp_path))
    named = load_csv(tmp_path / "d.csv", target="species", features=["a", "b"])
    _same(named, _reference(tmp_path))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"sepp": ";"}, r"^The 'read_options' parameter of load_csv must be a dict of pandas\.read_csv "
                        r"keywords; 'sepp' is not one\. Did you mean 'sep'\?"),
        ([";"], r"^The 'read_options' parameter of load_csv must be a dict of pandas\.read_csv keywords, "
                r"e\.g\. \{'sep': ';'\}\. Got \[';'\] instead\.$"),
        ({"filepath_or_buffer": "x"}, r"'filepath_or_buffer' is not one"),
    ],
)
def test_read_options_are_checked_in_one_line(tmp_path, options, expected):
    FRAME.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(InvalidParameterError, match=expected):
        load_csv(tmp_path / "d.csv", target="species", read_options=options)


def test_a_read_option_pandas_rejects_names_the_file(tmp_path):
    FRAME.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UserError, match=r"^cannot read the CSV file '.*d\.csv': "):
        load_csv(tmp_path / "d.csv", target="species", read_options={"nrows": "ten"})
