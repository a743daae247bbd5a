"""The one error format every public boundary uses (reglab._validation)."""

import math

import pytest
import torch

from reglab._validation import (
    Interval,
    InvalidParameterError,
    check_bool,
    check_device,
    check_int,
    check_option,
    check_scalar,
    did_you_mean,
)


@pytest.mark.parametrize(
    ("interval", "inside", "outside", "text"),
    [
        (Interval(0, 1), [0, 0.5, 1], [-0.1, 1.1], "[0, 1]"),
        (Interval(0, 1, closed="left"), [0, 0.999], [1, -1e-9], "[0, 1)"),
        (Interval(0, 1, closed="right"), [1e-9, 1], [0, 2], "(0, 1]"),
        (Interval(0, 1, closed="neither"), [0.5], [0, 1], "(0, 1)"),
        (Interval(0, None), [0, 1e30], [-1], "[0, inf)"),
        (Interval(None, 0.5), [-1e30, 0.5], [0.6], "(-inf, 0.5]"),
    ],
)
def test_interval_membership_and_text(interval, inside, outside, text):
    assert str(interval) == text
    assert all(v in interval for v in inside)
    assert not any(v in interval for v in outside)


def test_check_scalar_message_names_parameter_owner_range_and_value():
    with pytest.raises(InvalidParameterError) as info:
        check_scalar(-1, "strength", owner="L1", interval=Interval(0, None))
    assert str(info.value) == (
        "The 'strength' parameter of L1 must be a float in the range [0, inf). Got -1.0 instead."
    )


@pytest.mark.parametrize("bad", [math.nan, "0.1", None, True, [0.1]])
def test_check_scalar_rejects_non_numbers_and_nan(bad):
    with pytest.raises(InvalidParameterError, match="'p' parameter of Dropout must be a float"):
        check_scalar(bad, "p", owner="Dropout", interval=Interval(0, 1, closed="left"))


@pytest.mark.parametrize("interval", [Interval(0, None), Interval(None, None), Interval(0, 10)])
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_check_scalar_rejects_infinity_as_the_open_range_it_prints_says(interval, value):
    with pytest.raises(InvalidParameterError, match=rf"must be a float in the range \{str(interval)[0]}"):
        check_scalar(value, "x", owner="T", interval=interval)
    assert check_scalar(1e300 if interval.high is None else 10, "x", owner="T", interval=interval) > 0


def test_check_scalar_takes_infinity_where_the_range_is_closed_there():
    closed = Interval(0, math.inf, closed="right")
    assert str(closed) == "(0, inf]" and check_scalar(math.inf, "p", owner="T", interval=closed) == math.inf
    with pytest.raises(InvalidParameterError, match=r"range \[0, inf\)\. Got inf instead"):
        check_scalar(math.inf, "p", owner="T", interval=Interval(0, math.inf, closed="left"))


def test_error_is_both_value_and_type_error():
    with pytest.raises(ValueError):
        check_int(1.5, "patience", owner="EarlyStopping", interval=Interval(0, None))
    with pytest.raises(TypeError):
        check_bool("yes", "restore_best_weights", owner="EarlyStopping")


def test_check_int_rejects_bool_and_out_of_range():
    assert check_int(3, "k", owner="KFold", interval=Interval(2, None)) == 3
    for bad in (True, 1, 2.0):
        with pytest.raises(InvalidParameterError, match=r"must be an int in the range \[2, inf\)"):
            check_int(bad, "k", owner="KFold", interval=Interval(2, None))


def test_check_option_lists_choices_and_suggests_the_nearest():
    with pytest.raises(InvalidParameterError) as info:
        check_option("mxa", "mode", owner="EarlyStopping", options=("min", "max", "auto"))
    assert str(info.value) == (
        "The 'mode' parameter of EarlyStopping must be one of 'min', 'max', 'auto'. "
        "Got 'mxa' instead. Did you mean 'max'?"
    )
    assert check_option(None, "norm", owner="MLP", options=(None, "batch")) is None


def test_did_you_mean_is_silent_when_nothing_is_close():
    assert did_you_mean("zzzz", ["alpha", "beta"]) == ""
    assert did_you_mean("aplha", ["alpha", "beta"]) == " Did you mean 'alpha'?"


def test_an_array_argument_is_named_by_its_kind_dtype_and_shape_on_one_line():
    import numpy as np
    import torch

    from reglab._validation import fail
    from reglab.models import MLP
    from reglab.population import Population

    pop = Population(MLP(4, 2, hidden=(3,)), [{"lr": 0.1}])
    with pytest.raises(InvalidParameterError) as info:
        pop.fit(torch.zeros(50, 4), epochs=1)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith("Got a float32 tensor of shape (50, 4) instead.")
    array = fail("f", "x", "a list", np.zeros((2, 3))).args[0]
    assert array.endswith("Got a float64 array of shape (2, 3) instead.")
    long = str(fail("f", "x", "short", "y" * 500))
    assert len(long) < 250 and "..." in long


def test_a_class_given_as_a_value_is_named_not_read_as_an_array():
    """np.float64 and torch.Tensor have ``shape`` and ``dtype`` as descriptors: the message builder raised
    TypeError (no len()) instead of the one-line error."""
    import numpy as np

    import reglab
    from reglab._validation import fail, shown

    assert shown(np.float64) == "<class 'numpy.float64'>" and shown(torch.Tensor) == "<class 'torch.Tensor'>"
    message = str(fail("Trainer", "dtype", "None or a floating torch.dtype", np.float64))
    assert message == ("The 'dtype' parameter of Trainer must be None or a floating torch.dtype. "
                       "Got <class 'numpy.float64'> instead.")
    with pytest.raises(InvalidParameterError, match=r"'dtype' parameter of Trainer.*numpy\.float64"):
        reglab.Trainer(torch.nn.Linear(2, 1), dtype=np.float64)


def test_every_generator_argument_is_none_or_a_torch_generator():
    """One check, one message, wherever reglab draws random numbers from a caller's generator."""
    import torch
    from torch import nn

    from reglab.init import initialize
    from reglab.layers import DropConnect, DropPath, GaussianDropout, GaussianNoise, mc_predict
    from reglab.targets import CutMix, Mixup, cutmix, mixup

    x, y = torch.rand(4, 1, 4, 4), torch.arange(4) % 2
    calls = {
        "DropConnect": lambda g: DropConnect(nn.Linear(2, 2), 0.1, generator=g),
        "DropPath": lambda g: DropPath(0.1, generator=g),
        "GaussianNoise": lambda g: GaussianNoise(0.1, generator=g),
        "GaussianDropout": lambda g: GaussianDropout(0.1, generator=g),
        "mc_predict": lambda g: mc_predict(nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2)), x,
                                           samples=2, generator=g),
        "initialize": lambda g: initialize(nn.Linear(2, 2), generator=g),
        "mixup": lambda g: mixup(x, y, 0.4, 2, generator=g),
        "cutmix": lambda g: cutmix(x, y, 1.0, 2, generator=g),
        "Mixup": lambda g: Mixup(0.4, 2)(x, y, generator=g),
        "CutMix": lambda g: CutMix(1.0, 2)(x, y, generator=g),
    }
    for name, call in calls.items():
        owner = {"Mixup": "mixup", "CutMix": "cutmix"}.get(name, name)  # the transforms call the functions
        message = rf"The 'generator' parameter of {owner} must be None \(the global RNG\) or a torch"
        with pytest.raises(InvalidParameterError, match=message):
            call(5)
        call(torch.Generator().manual_seed(0))
        call(None)


@pytest.mark.parametrize("owner", ["Trainer", "Population"])
@pytest.mark.parametrize(
    "device,message",
    [
        ("tpu", "must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device. Got 'tpu' instead."),
        ("CPU", "Got 'CPU' instead."),
        (3, "Got 3 instead."),
        (torch.device("meta"), "Got device(type='meta') instead."),
    ],
)
def test_check_device_refuses_what_is_not_a_cpu_or_cuda_device(owner, device, message):
    with pytest.raises(InvalidParameterError) as info:
        check_device(device, owner)
    assert str(info.value).startswith(f"The 'device' parameter of {owner} ")
    assert message in str(info.value)


def test_check_device_takes_names_devices_and_auto():
    assert check_device("cpu", "Trainer") == torch.device("cpu")
    assert check_device(torch.device("cpu"), "Trainer") == torch.device("cpu")
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device("auto", "Trainer") == expected


def test_check_device_names_the_cuda_indices_this_machine_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1", "Trainer") == torch.device("cuda:1")
    assert check_device("cuda", "Trainer") == torch.device("cuda")
    with pytest.raises(InvalidParameterError, match=r"must be 'cuda:0' to 'cuda:1' \(2 CUDA devices here\)\. "
                       r"Got 'cuda:2' instead\."):
        check_device("cuda:2", "Trainer")


def test_check_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(InvalidParameterError, match=r"must be 'cpu' or 'auto' \(no CUDA device is"):
            check_device(name, "Trainer")
    assert check_device("auto", "Trainer") == torch.device("cpu")


def test_trainer_checks_its_device_at_the_boundary():
    from reglab import MLP, Trainer

    with pytest.raises(InvalidParameterError, match=r"^The 'device' parameter of Trainer must be 'cpu', "):
        Trainer(MLP(4, 2, hidden=(3,)), device="gpu")
