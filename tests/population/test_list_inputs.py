"""Population.fit / evaluate take (x, y) as lists and NumPy arrays, converted as the Trainer converts them."""

import numpy as np
import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.models import MLP
from reglab.population import Population
from reglab.train import Trainer
from reglab.train.loop import as_source


def _fit(train, val):
    torch.manual_seed(0)
    pop = Population(MLP(3, 2, hidden=(4,)), [{"lr": 0.1}, {"lr": 0.05, "l2": 1e-3}], seed=0)
    histories = pop.fit(train, val, epochs=2, batch_size=8, progress="off")
    return [h.rows for h in histories], pop.evaluate(val)


def test_lists_and_arrays_train_as_the_trainers_tensors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)).tolist()  # Python floats
    y = [int(v) for v in rng.integers(0, 2, 30)]  # Python ints
    src = as_source((x, y))  # the Trainer's conversion: float32 features, int64 labels
    assert (src.x.dtype, src.y.dtype) == (torch.float32, torch.int64)
    reference = _fit((src.x, src.y), (src.x[:10], src.y[:10]))
    strip = lambda rows: [[{k: v for k, v in r.items() if k != "time"} for r in h] for h in rows]  # noqa: E731
    for train, val in [((x, y), (x[:10], y[:10])),
                       ((np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int32)),
                        (np.asarray(x[:10], dtype=np.float32), np.asarray(y[:10])))]:
        rows, scores = _fit(train, val)
        assert strip(rows) == strip(reference[0]) and scores == reference[1]


@pytest.mark.parametrize("x, y", [([[1.0, 2.0, 3.0], [3.0]], [0, 1]), ([[1.0, 2.0, 3.0]] * 2, ["a", "b"])],
                         ids=["ragged", "strings"])
def test_lists_that_are_not_numbers_are_refused_in_one_line_as_by_the_trainer(x, y):
    messages = []
    for call in (lambda: Trainer(MLP(3, 2, hidden=()), epochs=1, progress="off").fit((x, y)),
                 lambda: Population(MLP(3, 2, hidden=()), [{}]).fit((x, y), epochs=1, progress="off")):
        with pytest.raises(InvalidParameterError) as info:
            call()
        messages.append(str(info.value))
    for message in messages:
        assert "\n" not in message and "(x, y) of numbers" in message and "torch.as_tensor:" in message
    assert messages[0].replace("of Trainer", "of Population.fit") == messages[1]
