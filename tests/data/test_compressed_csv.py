"""data.load reads a compressed CSV / TSV (data.csv.gz, ...) as pandas does: the plain file's splits."""

import numpy as np
import pandas as pd
import pytest
import torch

from reglab import data


@pytest.fixture()
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": rng.integers(0, 2, 60)})


@pytest.mark.parametrize("name, sep", [("d.csv.gz", ","), ("d.csv.bz2", ","), ("d.csv.xz", ","),
                                       ("d.csv.zip", ","), ("d.tsv.gz", "\t"), ("d.CSV.GZ", ","),
                                       ("semicolons.csv.gz", ";")])
def test_compressed_files_load_as_the_plain_csv(tmp_path, frame, name, sep):
    frame.to_csv(tmp_path / "plain.csv", index=False)
    plain = data.load(tmp_path / "plain.csv", target="label", seed=0)
    compression = "gzip" if name.endswith("GZ") else "infer"  # pandas infers from lower-case suffixes
    frame.to_csv(tmp_path / name, index=False, sep=sep, compression=compression)
    got = data.load(str(tmp_path / name), target="label", seed=0)  # a str path: dispatched on its suffixes
    assert got.input_shape == (2,) and got.num_classes == 2
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(got, split).x, getattr(plain, split).x)
        assert torch.equal(getattr(got, split).y, getattr(plain, split).y)


def test_a_compressed_csv_without_target_lists_its_columns(tmp_path, frame):
    frame.to_csv(tmp_path / "d.csv.gz", index=False)
    with pytest.raises(ValueError, match="needs the keyword 'target'.*its columns are 'a', 'b', 'label'"):
        data.load(tmp_path / "d.csv.gz", seed=0)
