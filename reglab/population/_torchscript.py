"""The population's step kernels compiled by TorchScript, so that two shards' threads run in parallel.

A CPU population steps its shards in threads of one process. A torch op called from Python
releases the interpreter lock (GIL) while it computes and takes it back to return, so the Python
between ops, and every hand-over of the lock, runs one thread at a time; a step is about a
hundred ops. A function compiled by ``torch.jit.script`` runs its whole body in C++ with the lock
released, and dispatches each op in about half the time. Measured on 2 cores, two 16-member
shards of MLP 40-256-256-10 (batch 100), the same step function in one process, alternating runs,
medians: 19.4 ms a step compiled against 21.0 ms in Python (see benchmarks/RESULTS.md).

``torch.jit.script`` is deprecated in favour of ``torch.compile``, which on CPU needs a C++
compiler at run time and compiles for tens of seconds; nothing else runs a sequence of torch ops
without the lock. The kernels are plain functions of tensors written in TorchScript's subset of
Python, so when scripting is unavailable (or switched off with ``REGLAB_TORCHSCRIPT=0``) the same
function runs as Python, with the same ops in the same order and the same results.

Only CPU tensors take the compiled function. On a GPU the population is one stack in one thread,
so releasing the lock gains nothing, and TorchScript's profiling executor would fuse elementwise
ops into CUDA kernels generated at run time (rounding differently, compiling again for every new
shape), a path no test here has run; CUDA tensors run the Python function.
"""

from __future__ import annotations

import inspect
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Kernel", "enabled", "parse_setting", "set_enabled"]

_OFF, _ON = ("0", "false", "no", "off"), ("", "1", "true", "yes", "on")


def parse_setting(value: str | None) -> bool:
    """``REGLAB_TORCHSCRIPT``'s value as a flag: 0 / false / no / off switch the kernels to Python;
    unset, empty, 1 / true / yes / on keep them compiled; anything else keeps them compiled and warns.

    Example:
        >>> parse_setting("off"), parse_setting(None)
        (False, True)
    """
    text = (value or "").strip().lower()
    if text in _OFF or text in _ON:
        return text not in _OFF
    warnings.warn(
        f"reglab: REGLAB_TORCHSCRIPT={value!r} is not understood; use 0/false/no/off to run the "
        "population's kernels as Python, or 1/true/yes/on; kept on",
        RuntimeWarning,
        stacklevel=2,
    )
    return True


_enabled = parse_setting(os.environ.get("REGLAB_TORCHSCRIPT"))
_lock = threading.Lock()


def enabled() -> bool:
    """Whether kernels run compiled by TorchScript (``REGLAB_TORCHSCRIPT=0`` in the environment: no)."""
    return _enabled


def set_enabled(flag: bool) -> bool:
    """Run kernels compiled (``True``) or as Python (``False``); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    return previous


class Kernel:
    """A function of tensors that runs compiled by ``torch.jit.script`` when enabled and its first
    tensor argument is on the CPU, else as Python.

    It is compiled when the kernel is made, at import (the four step kernels take about 0.05 s
    together): TorchScript compiles from the source file, which must still be the one the module
    was loaded from. A function that does not compile runs as Python, with one ``RuntimeWarning``.

    Example:
        >>> def axpy(a: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ...     return y.add(x, alpha=a)
        >>> Kernel(axpy)(2.0, torch.ones(2), torch.ones(2))
        tensor([3., 3.])
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._compiled: Callable[..., Any] | None = None
        if _enabled:
            self.compiled()

    def __call__(self, *args: Any) -> Any:
        if not _enabled or not _on_cpu(args):
            return self.fn(*args)
        compiled = self._compiled
        if compiled is None:
            compiled = self.compiled()
        return compiled(*args)

    def compiled(self) -> Callable[..., Any]:
        """The compiled function (compiling it now if needed), or the Python one if it does not compile."""
        with _lock:  # two shard threads may take their first step at the same moment
            if self._compiled is None:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
                        compiled = torch.jit.script(self.fn)
                    if not isinstance(compiled, torch.jit.ScriptFunction):  # PYTORCH_JIT=0: the user's choice
                        self._compiled = self.fn
                        return self._compiled
                    # Compiled from a source file edited since import, the body could be another function's.
                    names = [argument.name for argument in compiled.schema.arguments]
                    if names != list(inspect.signature(self.fn).parameters):
                        raise RuntimeError(f"compiled source takes {names}: file changed since import")
                    self._compiled = compiled
                except Exception as error:  # TorchScript unavailable or changed: run the same code as Python
                    warnings.warn(
                        f"reglab: TorchScript could not compile {self.__name__} ({type(error).__name__}: "
                        f"{_first_line(error)}); it runs as Python, slower",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    self._compiled = self.fn
            return self._compiled


def _on_cpu(args: tuple[Any, ...]) -> bool:
    """Whether the first tensor among ``args`` (or first in a list among them) is on the CPU."""
    for arg in args:
        if isinstance(arg, list) and arg:
            arg = arg[0]
        if isinstance(arg, torch.Tensor):
            return arg.device.type == "cpu"
    return True


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else ""
