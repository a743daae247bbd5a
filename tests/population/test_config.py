"""Argument checks of the population engine: one line, naming the parameter, owner, allowed values, value."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.models import MLP
from reglab.population import MemberConfig, Population


def test_configs_become_member_configs():
    pop = Population(MLP(4, 2, hidden=(8,)), [{"lr": 0.1, "l2": 1e-3}, MemberConfig(seed=3)])
    assert pop.configs[0] == MemberConfig(lr=0.1, l2=1e-3) and pop.configs[1].seed == 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": -1.0}, "The 'lr' parameter of MemberConfig must be a float in the range (0, inf). Got -1.0"),
        ({"dropout": 1}, "The 'dropout' parameter of MemberConfig must be a float in the range [0, 0.99999"),
        ({"seed": 1.5}, "The 'seed' parameter of MemberConfig must be an int in the range [0, 92233720"),
        ({"max_norm": 0}, "'max_norm' parameter of MemberConfig must be a float in the range (0, inf), or"),
        ({"l2": float("nan")}, "The 'l2' parameter of MemberConfig must be a float in the range [0, inf)."),
    ],
)
def test_member_config_checks_its_fields_when_made(kwargs, message):
    """A MemberConfig handed to Population directly is not re-read, so it must be valid from the start."""
    with pytest.raises(InvalidParameterError) as info:
        MemberConfig(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_member_config_normalizes_numbers():
    config = MemberConfig(lr=1, l2=0, max_norm=None, seed=3)
    assert (type(config.lr), type(config.l2), config.max_norm, config.seed) == (float, float, None, 3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"configs": []}, "The 'configs' parameter of Population must be a non-empty list of dicts"),
        (
            {"configs": [{"lr": -1.0}]},
            "The 'configs[0].lr' parameter of Population must be a float in the range "
            "(0, inf). Got -1.0 instead.",
        ),
        (
            {"configs": [{}, {"dropout": 1.0}]},
            "The 'configs[1].dropout' parameter of Population must be a float in "
            "the range [0, 0.9999923706054688). Got 1.0 instead.",
        ),
        (
            {"configs": [{"l2_": 0.1}]},
            "has an unknown key 'l2_'; allowed keys are lr, l1, l2, weight_decay, "
            "decoupled_decay, prox_l1, prox_l2, max_norm, dropout, noise, "
            "label_smoothing, seed. Did you mean 'l2'?",
        ),
        (
            {"optimizer": "adan"},
            "The 'optimizer' parameter of Population must be one of 'adam', 'sgd'. "
            "Got 'adan' instead. Did you mean 'adam'?",
        ),
        (
            {"data_order": "random"},
            "The 'data_order' parameter of Population must be one of 'shared', "
            "'per_member'. Got 'random' instead.",
        ),
        (
            {"betas": (1.5, 0.9)},
            "The 'betas[0]' parameter of Population must be a float in the range [0, 1). Got 1.5 instead.",
        ),
        ({"betas": (0.9,)}, "The 'betas' parameter of Population must be a pair (beta1, beta2) of floats"),
        ({"eps": -1}, "The 'eps' parameter of Population must be a float in the range [0, inf). Got -1.0"),
        (
            {"optimizer": "sgd", "momentum": 1.5},
            "The 'momentum' parameter of Population must be a float in the range [0, 1). Got 1.5 instead.",
        ),
        (
            {"nesterov": True},
            "The 'nesterov' parameter of Population must be False unless optimizer='sgd' with momentum > 0",
        ),
        (
            {"seed": 2**64},
            "The 'seed' parameter of Population must be an int in the range [0, 9223372036854775807].",
        ),
        (
            {"configs": [{"label_smoothing": 1.0}]},
            "The 'configs[0].label_smoothing' parameter of Population must be a float in the range [0, 1).",
        ),
        (
            {"configs": [{"lr": float("inf")}]},
            "The 'configs[0].lr' parameter of Population must be a float in the range (0, inf). Got inf",
        ),
        (
            {"arch": MLP(4, 1, hidden=(8,))},
            "The 'arch' parameter of Population must be a model with at least 2 outputs (softmax classes; "
            "binary labels take out_features=2). Got 'MLP with 1 output' instead.",
        ),
        (
            {"arch": nn.Linear(2, 2)},
            "The 'arch' parameter of Population must be a reglab.models.MLP or reglab.models.CNN1D instance.",
        ),
    ],
)
def test_bad_arguments_raise_one_clear_line(kwargs, message):
    args = {"arch": MLP(4, 2, hidden=(8,)), "configs": [{}], **kwargs}
    with pytest.raises(InvalidParameterError) as info:
        Population(args.pop("arch"), args.pop("configs"), **args)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_fit_checks_its_arguments():
    pop = Population(MLP(4, 2, hidden=(8,)), [{}])
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'epochs' parameter of Population.fit must be an int "
        r"in the range \[1, inf\). Got 0 instead.",
    ):
        pop.fit((x, y), epochs=0)
    with pytest.raises(UserError, match="float targets"):
        pop.fit((x, y.float()), epochs=1)
    pop.fit((x, y), epochs=1, batch_size=4)
    with pytest.raises(UserError, match="already fitted"):
        pop.fit((x, y), epochs=1)


@pytest.mark.parametrize(
    "train,message",
    [
        (
            (torch.randn(8, 5), torch.zeros(8, dtype=torch.long)),
            "Population.fit: train x has shape (8, 5); the MLP takes 4 features an example "
            "(x of shape (N, 4)).",
        ),
        (
            (torch.randn(8), torch.zeros(8, dtype=torch.long)),
            "Population.fit: train x has shape (8,); the MLP takes 4 features",
        ),
        (
            (torch.randn(8, 4), torch.arange(8)),
            "Population.fit: train y has labels 0..7; expected class indices 0..1 (the MLP has 2 outputs)",
        ),
        (
            (torch.randn(8, 4), -torch.ones(8, dtype=torch.long)),
            "Population.fit: train y has labels -1..-1; expected class indices 0..1",
        ),
        (
            (torch.randn(8, 4), torch.zeros(8, 1, dtype=torch.long)),
            "Population.fit: train y has shape (8, 1); expected class indices 0..1",
        ),
        (
            (torch.full((8, 4), float("nan")), torch.zeros(8, dtype=torch.long)),
            "Population.fit: train x has 32 NaN or infinite values; clean or impute them.",
        ),
    ],
)
def test_data_that_does_not_fit_the_architecture_is_refused_in_one_line(train, message):
    pop = Population(MLP(4, 2, hidden=(8,)), [{}])
    with pytest.raises(UserError) as info:
        pop.fit(train, epochs=1, progress="off")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    with pytest.raises(UserError, match=r"^Population.fit: val x has shape \(8, 5\)"):
        pop.fit((x, y), (torch.randn(8, 5), y), epochs=1, progress="off")
    pop.fit((x.view(8, 2, 2), y), epochs=1, progress="off")  # (N, 2, 2) flattens to the 4 features
    with pytest.raises(UserError, match=r"^Population.evaluate: data y has labels 0..7"):
        pop.evaluate((torch.randn(8, 4), torch.arange(8)))


@pytest.mark.parametrize(
    "device,message",
    [
        ("tpu", "The 'device' parameter of Population must be 'cpu', 'cuda', 'cuda:N', 'auto' or a "
         "torch.device. Got 'tpu' instead."),
        (3, "Got 3 instead."),
        (torch.device("meta"), "Got device(type='meta') instead."),
    ],
)
def test_bad_device_is_refused(device, message):
    with pytest.raises(InvalidParameterError) as info:
        Population(MLP(4, 2, hidden=(8,)), [{}], device=device)
    assert message in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_refused_and_auto_picks_the_cpu():
    with pytest.raises(InvalidParameterError, match=r"must be 'cpu' or 'auto' \(no CUDA device is available"):
        Population(MLP(4, 2, hidden=(8,)), [{}], device="cuda")
    assert Population(MLP(4, 2, hidden=(8,)), [{}], device="auto").device == torch.device("cpu")


def test_checkpoint_folder_is_made_or_refused_before_training(tmp_path):
    x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    pop = Population(MLP(4, 2, hidden=(8,)), [{}])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = r"'checkpoint' parameter of Population.fit must be None or a file path in a folder this process"
    with pytest.raises(InvalidParameterError, match=message):
        pop.fit((x, y), epochs=1, checkpoint=blocker / "ck.pt", progress="off")
    assert len(pop.histories_[0]) == 0  # nothing trained
    pop.fit((x, y), epochs=1, checkpoint=tmp_path / "new" / "ck.pt", progress="off")
    assert (tmp_path / "new" / "ck.pt").is_file()


def test_decoupled_decay_with_sgd_is_refused_as_by_the_trainer():
    with pytest.raises(InvalidParameterError) as err:
        Population(MLP(4, 2, hidden=(8,)), [{}, {"decoupled_decay": 0.1}], optimizer="sgd")
    assert str(err.value) == (
        "The 'configs[1].decoupled_decay' parameter of Population must be 0 with optimizer='sgd' (use "
        "weight_decay, torch's coupled decay, or optimizer='adam'). Got 0.1 instead."
    )
    Population(MLP(4, 2, hidden=(8,)), [{"decoupled_decay": 0.1}], optimizer="adam")  # AdamW's decay


def test_finite_inputs_past_the_populations_dtype_are_an_overflow_not_a_nan():
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.arange(8) % 2
    x[0, 0] = 1e300
    message = r"^Population.fit: train x holds values up to 1e\+300 in magnitude, past the range of torch"
    with pytest.raises(UserError, match=message):
        Population(MLP(4, 2, hidden=(8,)), [{}]).fit((x, y), epochs=1, progress="off")
    Population(MLP(4, 2, hidden=(8,)), [{}], dtype=torch.float64).fit((x, y), epochs=1, progress="off")
    x[0, 0] = float("nan")
    with pytest.raises(UserError, match=r"train x has 1 NaN or infinite values"):
        Population(MLP(4, 2, hidden=(8,)), [{}]).fit((x, y), epochs=1, progress="off")


@pytest.mark.parametrize(
    "key,hint",
    [
        ("learning_rate", "A member's config calls it 'lr'."),  # Keras / Optuna's name
        ("wd", "A member's config calls it 'weight_decay'."),
        ("penalty", "A member's config gives its penalty's strength as 'l1' / 'l2' (added to the loss) or "
         "'prox_l1' / 'prox_l2' (proximal)."),  # the Trainer's argument
        ("momentum", "It is shared by all members: pass Population(..., momentum=...)."),
        ("batch_size", "It is shared by all members: pass Population.fit(..., batch_size=...)."),
        ("max_nrom", "Did you mean 'max_norm'?"),
    ],
)
def test_an_unknown_key_says_what_a_member_config_calls_it_or_where_it_goes(key, hint):
    with pytest.raises(InvalidParameterError) as info:
        Population(MLP(4, 2, hidden=(8,)), [{}, {key: 0.1}])
    text = str(info.value)
    assert text.startswith(f"The 'configs[1]' parameter of Population has an unknown key {key!r}; allowed")
    assert text.endswith(f"seed. {hint}") and "\n" not in text


def test_dataclass_configs_read_as_their_fields_and_a_data_frame_is_refused_with_its_records():
    @dataclasses.dataclass
    class Trial:  # a tuner's structured config
        lr: float = 1e-2
        l2: float = 0.0
        seed: int = 0

    arch = MLP(4, 2, hidden=(8,))
    dicts = [{"lr": 1e-2, "l2": 0.0, "seed": 0}, {"lr": 3e-3, "l2": 1e-4, "seed": 1}]
    want = Population(arch, dicts).configs
    assert Population(arch, [Trial(), Trial(3e-3, 1e-4, 1)]).configs == want

    @dataclasses.dataclass
    class Named(Trial):
        name: str = "a"

    with pytest.raises(InvalidParameterError, match=r"'configs\[0\]' parameter of Population has an unknown "
                       r"key 'name'"):
        Population(arch, [Named()])
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(dicts)
    with pytest.raises(InvalidParameterError) as info:
        Population(arch, frame)
    assert str(info.value) == (
        "The 'configs' parameter of Population must be a non-empty list of dicts, dataclasses or "
        "MemberConfig (for a DataFrame, configs=df.to_dict('records')). Got \"a pandas DataFrame with "
        "columns ['lr', 'l2', 'seed']\" instead."
    )
    with pytest.raises(InvalidParameterError, match=r"Got 'a pandas Series' instead"):
        Population(arch, [row for _, row in frame.iterrows()])  # iterrows made the seeds floats
    assert Population(arch, frame.to_dict("records")).configs == want


@pytest.mark.parametrize(
    "train",
    [
        (torch.tensor(1.0), torch.tensor(0)),
        (torch.randn(8, 4), torch.tensor(0)),
        (torch.tensor(1.0), torch.zeros(8, dtype=torch.long)),
    ],
    ids=["both", "y", "x"],
)
def test_zero_dimensional_tensors_are_refused_in_one_line_not_with_a_type_error(train):
    pop = Population(MLP(4, 2, hidden=(8,)), [{}])
    for call, name in ((lambda: pop.fit(train, epochs=1, progress="off"), "train"),
                       (lambda: pop.evaluate(train), "data")):
        with pytest.raises(InvalidParameterError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"The '{name}' parameter of Population.") and "\n" not in message
        assert "tensors or arrays of equal, non-zero length. Got (" in message


def test_a_dataframe_grid_may_leave_max_norm_out_for_some_rows():
    """pandas holds a missing max_norm as NaN, and df.to_dict("records") passes it on: it means none."""
    pd = pytest.importorskip("pandas")
    grid = pd.DataFrame({"lr": [1e-2, 2e-2], "seed": [0, 1], "max_norm": [None, 0.5]})
    records = grid.to_dict("records")
    assert math.isnan(records[0]["max_norm"])  # what the user hands over
    x, y = torch.randn(32, 4, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 2
    got = Population(MLP(4, 2, hidden=(8,)), records, dtype=torch.float64)
    configs = [{"lr": 1e-2, "seed": 0}, {"lr": 2e-2, "seed": 1, "max_norm": 0.5}]
    want = Population(MLP(4, 2, hidden=(8,)), configs, dtype=torch.float64)
    assert got.configs == want.configs and got.configs[0].max_norm is None
    got.fit((x, y), epochs=2, batch_size=8, progress="off")
    want.fit((x, y), epochs=2, batch_size=8, progress="off")
    for k in range(2):
        for name, tensor in want.member(k).state_dict().items():
            assert torch.equal(got.member(k).state_dict()[name], tensor), (k, name)
