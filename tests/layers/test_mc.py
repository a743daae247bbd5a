"""reglab.layers.mc_predict: dropout on, normalization in eval, modes restored, reproducible."""

import math

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.layers import DropPath, mc_predict


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    model = model.double()
    bn = model[1]
    bn.running_mean.copy_(torch.linspace(-1, 1, 8))
    bn.running_var.copy_(torch.linspace(0.5, 2, 8))
    bn.num_batches_tracked.fill_(7)
    return model


def test_batchnorm_stays_in_eval_and_uses_running_statistics():
    model = bn_model().train()
    bn = model[1]
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    seen = []
    bn.register_forward_hook(lambda m, inp, out: seen.append((inp[0], out)))
    x = torch.randn(16, 4, dtype=torch.float64)
    _, std = mc_predict(model, x, samples=5, generator=gen())
    for key, value in bn.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert len(seen) == 5
    for inp, out in seen:  # y = gamma (x - running_mean) / sqrt(running_var + eps) + beta
        ref = (inp - before["running_mean"]) / torch.sqrt(before["running_var"] + bn.eps)
        assert torch.allclose(out, ref * before["weight"] + before["bias"], rtol=1e-12, atol=1e-12)
    assert bool((std > 0).any())


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_every_module_mode_is_restored(start):
    model = bn_model()
    if start == "eval":
        model.eval()
    if start == "mixed":
        model[1].eval()
        model[3].train()
    modes = [m.training for m in model.modules()]
    mc_predict(model, torch.randn(3, 4, dtype=torch.float64), samples=2)
    assert [m.training for m in model.modules()] == modes


def test_modes_are_restored_after_an_error():
    model = bn_model().eval()
    with pytest.raises(RuntimeError):
        mc_predict(model, torch.randn(3, 5, dtype=torch.float64), samples=2)  # wrong width
    assert not any(m.training for m in model.modules())


def test_same_generator_same_result_and_global_rng_untouched():
    model, x = bn_model(), torch.randn(6, 4, dtype=torch.float64)
    state = torch.get_rng_state()
    a = mc_predict(model, x, samples=4, generator=gen(3))
    b = mc_predict(model, x, samples=4, generator=gen(3))
    c = mc_predict(model, x, samples=4, generator=gen(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_mean_converges_to_the_deterministic_output_of_a_linear_model():
    # Dropout followed by a linear map: E[output] is exactly the eval output (inverted scaling).
    torch.manual_seed(1)
    model = nn.Sequential(nn.Dropout(0.3), nn.Linear(10, 3)).double()
    x = torch.randn(5, 10, dtype=torch.float64)
    samples = 2000
    mean, std = mc_predict(model, x, samples=samples, generator=gen())
    expected = model.eval()(x)
    assert bool(((mean - expected).abs() < 5 * std / math.sqrt(samples)).all())
    assert bool((std > 0).all())


def test_reglab_layers_count_as_dropout():
    model = nn.Sequential(nn.Linear(3, 3), DropPath(0.5))
    _, std = mc_predict(model, torch.randn(8, 3), samples=20, generator=gen())
    assert bool((std > 0).any())


def test_errors_name_the_parameter():
    with pytest.raises(
        InvalidParameterError,
        match=r"^The 'model' parameter of mc_predict must be a module "
        r"containing a dropout-family layer \(.*\)\. Got 'Linear' instead\.$",
    ):
        mc_predict(nn.Linear(2, 2), torch.ones(1, 2))
    with pytest.raises(InvalidParameterError) as info:
        mc_predict(bn_model(), torch.ones(1, 4), samples=1)
    assert (
        str(info.value)
        == "The 'samples' parameter of mc_predict must be an int in the range [2, inf). Got 1 instead."
    )


def test_mc_predict_checks_model_and_input():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    with pytest.raises(InvalidParameterError, match=r"'model' parameter of mc_predict must be a torch.nn"):
        mc_predict("m", torch.ones(1, 3))
    with pytest.raises(InvalidParameterError, match=r"'x' parameter of mc_predict must be a torch.Tensor"):
        mc_predict(model, [[1.0, 2.0, 3.0]])
