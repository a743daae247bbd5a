"""from_dataset takes the items plain Python datasets yield: lists, NumPy values, class names, dicts."""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import LabelEncoder
from torch.utils.data import Dataset

from reglab._validation import InvalidParameterError
from reglab.data import from_dataset, from_tensors
from reglab.errors import UserError

X = np.random.default_rng(0).normal(size=(30, 3))
NAMES = np.array(["cat", "dog", "eel"])[np.arange(30) % 3]


class Items(Dataset):
    def __init__(self, make):
        self.make = make

    def __len__(self):
        return 30

    def __getitem__(self, i):
        return self.make(i)


def _same_splits(a, b):
    for part in ("train", "val", "test"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)


def test_inputs_as_python_lists_are_rows_not_transposed():
    # default_collate turned a list of 3 numbers into 3 batched tensors: a traceback from torch.as_tensor.
    d = from_dataset(Items(lambda i: (X[i].tolist(), int(i % 2))), seed=1)
    assert d.input_shape == (3,)
    _same_splits(d, from_tensors(X, np.arange(30) % 2, seed=1))


def test_class_names_as_targets_are_encoded_like_a_csv_column():
    d = from_dataset(Items(lambda i: (torch.from_numpy(X[i]), str(NAMES[i]))), seed=2)
    assert d.task == "classification" and d.classes == ["cat", "dog", "eel"]
    _same_splits(d, from_tensors(X, LabelEncoder().fit_transform(NAMES), seed=2))


def test_dict_items_are_read_by_x_key_and_y_key():
    d = from_dataset(Items(lambda i: {"x": X[i], "y": i % 3}), seed=0)
    _same_splits(d, from_tensors(X, np.arange(30) % 3, seed=0))
    named = from_dataset(Items(lambda i: {"image": X[i], "label": i % 3}), x_key="image", y_key="label")
    _same_splits(named, d)
    with pytest.raises(UserError) as err:
        from_dataset(Items(lambda i: {"image": X[i], "label": i % 3}), x_key="img", y_key="label")
    assert str(err.value) == ("Items: item 0 is a dict without the key 'img' (x_key); its keys are 'image', "
                              "'label'. Did you mean 'image'? Pass x_key=...")
    with pytest.raises(UserError, match=r"^Items: item 0 is a dict without the key 'x' \(x_key\); its keys"):
        from_dataset(Items(lambda i: {"image": X[i], "label": i % 3}))


def test_x_key_with_tuple_items_is_refused():
    with pytest.raises(InvalidParameterError, match=r"'x_key' parameter of from_dataset must be None"):
        from_dataset(Items(lambda i: (X[i], i % 2)), x_key="x")


def test_items_of_different_shapes_name_the_first_odd_item():
    ragged = Items(lambda i: (torch.zeros(3 + (i == 4)), i % 2))
    with pytest.raises(UserError) as err:
        from_dataset(ragged)
    assert str(err.value) == ("Items yields inputs of different shapes: item 0's is (3,), item 4's (4,); "
                              "every item's input needs the same shape.")
