"""A Keras-style clip number or a built scheduler object is refused in one line naming what reglab takes."""

import pytest
import torch

from reglab import ClipGradNorm, Trainer
from reglab._validation import InvalidParameterError
from reglab.models import MLP


def test_a_clip_number_is_refused_naming_the_clipping_callables():
    with pytest.raises(InvalidParameterError) as info:
        Trainer(MLP(3, 2), clip=1.0)
    message = str(info.value)
    assert "\n" not in message and message.endswith("Got 1.0 instead.")
    assert "reglab.ClipGradNorm(1.0) (Keras global_clipnorm)" in message
    Trainer(MLP(3, 2), clip=ClipGradNorm(1.0))  # what the message names is accepted


def test_a_built_scheduler_is_refused_naming_the_factory_form():
    model = MLP(3, 2)
    built = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(model.parameters(), lr=0.1), step_size=3)
    with pytest.raises(InvalidParameterError, match=r"'scheduler' parameter of Trainer must be None or a "
                                                    r"factory optimizer -> scheduler .*lambda opt:"):
        Trainer(model, scheduler=built)
    Trainer(model, scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=10))


def test_a_validation_fraction_is_refused_saying_how_to_hold_one_out():
    from reglab.data import from_tensors

    x, y = torch.randn(50, 3), torch.randint(0, 2, (50,))
    with pytest.raises(InvalidParameterError) as info:
        Trainer(MLP(3, 2), epochs=1, progress="off").fit((x, y), 0.2)  # Keras validation_split=0.2
    message = str(info.value)
    assert "\n" not in message and "Got 0.2 instead." in message
    assert "reglab.data.from_tensors(x, y, val_size=0.2, test_size=0)" in message
    splits = from_tensors(x, y, val_size=0.2, test_size=0)  # the advice works: 40 train, 10 val rows
    assert (len(splits.train), len(splits.val)) == (40, 10)
