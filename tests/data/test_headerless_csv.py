"""A CSV without a header: read with header=None, its columns (the ints 0, 1, ...) are named by text too."""

from __future__ import annotations

import pytest
import torch

from reglab import data
from reglab.errors import UserError


@pytest.fixture
def files(tmp_path):
    rows = "".join(f"{0.1 * i:.1f},{(7 * i) % 5 - 2.5:.1f},{i % 2}\n" for i in range(30))
    (tmp_path / "plain.csv").write_text(rows)
    (tmp_path / "named.csv").write_text("0,1,2\n" + rows)  # the same data under the names 0, 1, 2
    return tmp_path


@pytest.mark.parametrize("target", ["2", 2])
def test_a_headerless_csv_takes_its_target_by_position_as_text_or_int(files, target):
    # target='2' (as a CLI or config gives it) said "The target column '2' is not in plain.csv; its columns
    # are '0', '1', '2'. Did you mean '2'?": pandas names the columns with the ints 0, 1, 2.
    got = data.load(files / "plain.csv", target=target, read_options={"header": None}, seed=3)
    ref = data.load(files / "named.csv", target="2", seed=3)
    assert got.feature_names == ref.feature_names == ["0", "1"] and got.classes == ref.classes == [0, 1]
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(got, part).x, getattr(ref, part).x)
        assert torch.equal(getattr(got, part).y, getattr(ref, part).y)
    one = data.load_csv(files / "plain.csv", target="2", features=["1"], read_options={"header": None})
    assert one.feature_names == ["1"] and one.input_shape == (1,)


def test_a_headerless_csv_read_with_a_header_says_so(files):
    # pandas took the first data row for names ('0.0', '-2.5', '0'), and the error only listed them.
    with pytest.raises(UserError, match=r"header is all numbers \('0\.0', '-2\.5', '0'\): the file may have "
                                        r"no header\. If so, pass read_options=\{'header': None\}"):
        data.load(files / "plain.csv", target="label")
    (files / "words.csv").write_text("a,b,y\n" + (files / "plain.csv").read_text())
    with pytest.raises(UserError, match="its columns are 'a', 'b', 'y'") as err:  # a header of names: no hint
        data.load(files / "words.csv", target="label")
    assert "no header" not in str(err.value)
