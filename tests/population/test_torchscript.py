"""The step kernels compile under TorchScript and give, bit for bit, what the same code gives as Python."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch

from reglab.callbacks.early_stopping import EarlyStopping
from reglab.models import MLP
from reglab.population import Population, _backprop, _dropout, _optim, _torchscript
from reglab.population._torchscript import Kernel
from tests.population.conftest import make_data

KERNELS = [_backprop._forward, _backprop._backward, _dropout._fill_mask, _optim._fused_adam]


@pytest.fixture
def python_kernels():
    previous = _torchscript.set_enabled(False)
    yield
    _torchscript.set_enabled(previous)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_every_step_kernel_compiles(kernel, recwarn):
    assert isinstance(kernel.compiled(), torch.jit.ScriptFunction)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def fit(activation: str, masks: str, dtype: torch.dtype, *, residual: bool = False, norm: str | None = None):
    train, val = make_data(90, 10, 3, seed=7), make_data(30, 10, 3, seed=8)
    configs = [
        {
            "lr": 1e-2 * (1 + k % 2),
            "seed": k,
            "dropout": 0.1 * (k % 4),
            "weight_decay": 1e-3 * k,
            "decoupled_decay": 1e-2 * (k % 3 == 1),
            "label_smoothing": 0.1 * (k % 2),
        }
        for k in range(5)
    ]
    arch = MLP(10, 3, hidden=(8, 8), activation=activation, residual=residual, norm=norm)
    pop = Population(arch, configs, seed=3, dtype=dtype, dropout_masks=masks, threads=2)
    histories = pop.fit(train, val, epochs=3, batch_size=16, early_stopping=EarlyStopping(patience=1))
    rows = [[{k: v for k, v in r.items() if k != "time"} for r in h.rows] for h in histories]
    return [pop.member(k).state_dict() for k in range(len(configs))], rows


@pytest.mark.parametrize(
    "activation, masks, dtype, residual, norm",
    [
        ("relu", "independent", torch.float32, False, None),
        ("relu", "common", torch.float64, True, None),
        ("tanh", "independent", torch.float32, True, None),
        ("gelu", "independent", torch.float64, False, None),
        ("relu", "independent", torch.float32, False, "batch"),
        ("silu", "independent", torch.float32, True, "layer"),
    ],
)
def test_compiled_and_python_kernels_train_identical_populations(activation, masks, dtype, residual, norm):
    """Same ops in the same order: weights (BatchNorm's statistics included) and histories equal bit for
    bit, dropout and both decays on."""
    compiled = fit(activation, masks, dtype, residual=residual, norm=norm)
    previous = _torchscript.set_enabled(False)
    try:
        python = fit(activation, masks, dtype, residual=residual, norm=norm)
    finally:
        _torchscript.set_enabled(previous)
    (weights, rows), (python_weights, python_rows) = compiled, python
    assert rows == python_rows
    assert any(r["train_loss"] != rows[0][0]["train_loss"] for r in rows[1])  # members do differ
    for a, b in zip(weights, python_weights):
        assert all(torch.equal(a[name], b[name]) for name in a)


def test_kernel_that_does_not_compile_runs_as_python_with_one_warning():
    def uses_a_set(x: torch.Tensor) -> torch.Tensor:
        return x * len({1, 2})  # set literals are outside TorchScript

    with pytest.warns(RuntimeWarning, match=r"could not compile uses_a_set .*runs as Python"):
        kernel = Kernel(uses_a_set)  # compiled when made
    assert torch.equal(kernel(torch.ones(2)), torch.full((2,), 2.0))
    assert kernel.compiled() is uses_a_set
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert torch.equal(kernel(torch.ones(1)), torch.full((1,), 2.0))


def test_torch_jit_switched_off_runs_kernels_as_python_without_a_warning(monkeypatch):
    """With ``PYTORCH_JIT=0``, ``torch.jit.script`` hands back the function itself."""
    monkeypatch.setattr(torch.jit, "script", lambda fn: fn)

    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel = Kernel(double)
    assert kernel.compiled() is double
    assert torch.equal(kernel(torch.ones(1)), torch.full((1,), 2.0))


@pytest.mark.parametrize(
    "value, on",
    [(None, True), ("", True), ("1", True), (" Yes ", True), ("0", False), ("FALSE", False), ("off", False)],
)
def test_environment_setting_is_read_as_a_flag(value, on):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _torchscript.parse_setting(value) is on


def test_environment_setting_not_understood_warns_and_keeps_kernels_compiled():
    with pytest.warns(RuntimeWarning, match=r"REGLAB_TORCHSCRIPT='maybe' is not understood; use 0/false/no/"):
        assert _torchscript.parse_setting("maybe") is True


def test_disabled_kernels_run_as_python(python_kernels):
    calls = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)  # only Python can append here
        return x * 2

    assert not _torchscript.enabled()
    assert torch.equal(Kernel(double)(torch.ones(1)), torch.full((1,), 2.0))
    assert calls == [1]


def test_source_file_edited_since_import_is_not_compiled(tmp_path, monkeypatch):
    """TorchScript reads the function's lines from its file: after an edit they may be another function's."""
    source = """
import torch

def first(x: torch.Tensor) -> torch.Tensor:
    return x + 1

def second(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return y * z
"""
    (tmp_path / "edited_kernels.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("edited_kernels")
    (tmp_path / "edited_kernels.py").write_text("# a comment\n" * 3 + source)  # every line moves down
    with pytest.warns(RuntimeWarning, match=r"could not compile second"):
        kernel = Kernel(module.second)
    assert torch.equal(kernel(torch.full((1,), 2.0), torch.full((1,), 3.0)), torch.full((1,), 6.0))


def test_only_cpu_tensors_take_the_compiled_function():
    """CUDA (here: meta) tensors run the Python function; the first tensor, or a list's first, decides."""

    def scale(xs: list[torch.Tensor], factor: float) -> torch.Tensor:
        return xs[0] * factor

    kernel = Kernel(scale)
    taken = []
    kernel._compiled = lambda *args: taken.append("compiled") or scale(*args)
    meta = kernel([torch.ones(2, device="meta")], 3.0)
    assert meta.device.type == "meta" and meta.shape == (2,)
    assert taken == []
    assert torch.equal(kernel([torch.ones(2)], 3.0), torch.full((2,), 3.0))
    assert taken == ["compiled"]
