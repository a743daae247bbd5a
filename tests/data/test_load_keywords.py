"""load(path) without a keyword its loader needs is one line, not a TypeError traceback."""

import numpy as np
import pandas as pd
import pytest

from reglab._validation import InvalidParameterError
from reglab.data import load
from reglab.errors import UserError


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet"])
def test_a_table_without_target_names_the_keyword_and_the_columns(tmp_path, suffix):
    frame = pd.DataFrame({"a": np.arange(20.0), "label": [0, 1] * 10})
    path = tmp_path / f"d.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == "tsv" else ",")
    with pytest.raises(InvalidParameterError) as err:
        load(str(path))
    assert str(err.value) == (
        f"load('d.{suffix}') needs the keyword 'target': the name of the label column; its columns are "
        "'a', 'label'."
    )
    assert load(str(path), target="label").num_classes == 2


def test_an_unreadable_table_still_names_the_keyword(tmp_path):
    (tmp_path / "d.csv").write_text("")
    with pytest.raises(InvalidParameterError, match=r"^load\('d\.csv'\) needs the keyword 'target': the name "
                       r"of the label column\.$"):
        load(str(tmp_path / "d.csv"))


def test_a_missing_file_is_named_before_the_keyword(tmp_path):
    with pytest.raises(UserError, match=r"^CSV file not found: "):
        load(str(tmp_path / "nope.csv"))
