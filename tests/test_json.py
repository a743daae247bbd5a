"""reglab._json: strict JSON that reads back exactly; a malformed "$nonfinite" block is a ValueError."""

from __future__ import annotations

import json
import math

import pytest

from reglab._json import dumps_exact, loads_exact


def test_round_trip_restores_nan_and_infinities_in_nested_places():
    value = {"rows": [{"a/b": math.inf, "c~d": 1.0}, {"x": [math.nan, -math.inf]}], "n": None}
    back = loads_exact(dumps_exact(value))
    assert back["rows"][0] == {"a/b": math.inf, "c~d": 1.0} and back["n"] is None
    assert math.isnan(back["rows"][1]["x"][0]) and back["rows"][1]["x"][1] == -math.inf


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ({"/rows/3/train_loss": "nan"}, "$nonfinite entry '/rows/3/train_loss' points at nothing: "
                                        "'/rows' has 1 item(s)"),
        ({"/rows/0/train_loss": "NaN"}, "$nonfinite entry '/rows/0/train_loss' has the kind \"NaN\"; "
                                        "allowed: 'nan', 'inf', '-inf'"),
        ({"/rows/0/val_loss": ["nan"]}, "$nonfinite entry '/rows/0/val_loss' has the kind [\"nan\"]"),
        ({"/rows/0/lr": "inf"}, "$nonfinite entry '/rows/0/lr' points at nothing: '/rows/0' has no key 'lr'"),
        ({"/rows/-1/val_loss": "nan"}, "'-1' is not a list index at '/rows'"),
        ({"/rows/01/val_loss": "nan"}, "'01' is not a list index at '/rows'"),
        ({"/rows/0/epoch": "nan"}, "'/rows/0/epoch' points at 0, not at the null it restores"),
        ({"/rows/0/epoch/x": "nan"}, "'/rows/0/epoch' is 0, not an object or a list"),
        ({"rows": "nan"}, "entry 'rows' is not a JSON Pointer to a value (it must start with '/')"),
        (["/rows/0/val_loss"], "$nonfinite must be an object of JSON Pointers to 'nan', 'inf' or '-inf'; "
                               "got list"),
    ],
)
def test_a_malformed_nonfinite_block_is_a_value_error_naming_the_entry(marks, message):
    text = json.dumps({"rows": [{"epoch": 0, "train_loss": 1.0, "val_loss": None}], "$nonfinite": marks})
    with pytest.raises(ValueError) as info:
        loads_exact(text)
    assert type(info.value) is ValueError and message in str(info.value)
