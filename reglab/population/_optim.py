"""Optimizers, proximal steps and max-norm over the flat ``(K, P)`` parameter buffer.

Hand-written because ``torch.optim`` takes one learning rate per parameter group, while here every
member (row) has its own learning rate and decay strengths, broadcast as ``(K, 1)`` tensors. Adam
calls torch's fused Adam kernel on row slices grouped by setting; SGD is a handful of in-place
elementwise passes over two or three big tensors (no per-step allocation), in the same operation
order as ``torch.optim.SGD``, so a member matches training alone with torch's optimizer to rounding.
"""

from __future__ import annotations

import torch

from reglab.population._torchscript import Kernel

__all__ = ["StackedAdam", "StackedSGD", "prox_", "max_norm_"]


class _Stacked:
    """Shared bookkeeping: per-member hyperparameters ``(K, 1)`` and row compaction of the state."""

    state_names: tuple[str, ...] = ()

    def __init__(self, hyper: dict[str, torch.Tensor], weight_size: int):
        self.hyper = hyper  # lr, weight_decay, decoupled_decay: (K, 1)
        self.weight_size = weight_size
        self.steps = 0
        self.tmp: torch.Tensor | None = None

    def select(self, keep: torch.Tensor) -> None:
        self.hyper = {n: h.index_select(0, keep) for n, h in self.hyper.items()}
        for name in self.state_names:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, keep))
        self.tmp = None

    def _decay(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        w = self.weight_size
        wd, dec = self.hyper["weight_decay"], self.hyper["decoupled_decay"]
        if bool((wd != 0).any()):  # coupled: torch's grad = grad + wd * param
            grad[:, :w].addcmul_(theta[:, :w], wd)
        if bool((dec != 0).any()):  # decoupled (AdamW): param *= 1 - lr * wd, before the update
            theta[:, :w].mul_(1 - self.hyper["lr"] * dec)


class StackedAdam(_Stacked):
    """Adam (``torch.optim.Adam`` formulas; decoupled decay as ``AdamW``) with per-row learning rates.

    Each step is torch's own fused Adam kernel (``torch._fused_adam_`` / ``_fused_adamw_``, what
    ``torch.optim.Adam(fused=True)`` calls): one pass over parameters, gradients and both moments
    instead of about nine elementwise passes. The kernel takes one learning rate and decay per call,
    so rows are grouped by ``(lr, weight_decay, decoupled_decay)``: one call per distinct setting
    over the rows' weight slices, and one call per learning rate over the rest (biases and norm
    parameters, never decayed).

    Example:
        >>> theta, grad = torch.ones(2, 3), torch.ones(2, 3)
        >>> hyper = {k: torch.zeros(2, 1) for k in ("weight_decay", "decoupled_decay")}
        >>> opt = StackedAdam({"lr": torch.tensor([[0.1], [0.2]]), **hyper}, weight_size=3)
        >>> opt.step(theta, grad); theta[:, 0]
        tensor([0.9000, 0.8000])
    """

    state_names = ("m", "v")

    def __init__(self, hyper, weight_size, *, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(hyper, weight_size)
        self.betas, self.eps = betas, eps
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self._groups: list[tuple[float, float, float, list[int]]] | None = None
        self._calls: tuple[list, ...] | None = None
        self._calls_for: tuple[torch.Tensor | None, ...] = ()

    def select(self, keep: torch.Tensor) -> None:
        super().select(keep)
        self._groups = None
        self._calls = None

    def _settings(self) -> list[tuple[float, float, float, list[int]]]:
        """``(lr, weight_decay, decoupled_decay, rows)`` for each distinct setting, in row order."""
        if self._groups is None:
            columns = zip(*(self.hyper[n][:, 0].tolist() for n in ("lr", "weight_decay", "decoupled_decay")))
            groups: dict[tuple[float, float, float], list[int]] = {}
            for row, key in enumerate(columns):
                groups.setdefault(key, []).append(row)
            self._groups = [(*key, rows) for key, rows in groups.items()]
        return self._groups

    @torch.no_grad()
    def step(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        if self.m is None:
            self.m, self.v = torch.zeros_like(theta), torch.zeros_like(theta)
        self.steps += 1
        # The kernel reads the step count (torch.optim increments it before the call) and never
        # writes it, so one scalar tensor serves every slice.
        step = torch.tensor(float(self.steps), device=theta.device)
        calls = self._kernel_calls(theta, grad)
        _fused_adam(*calls, step, self.betas[0], self.betas[1], self.eps)

    def _kernel_calls(self, theta: torch.Tensor, grad: torch.Tensor) -> tuple[list, ...]:
        """The fused-kernel calls of a step as :func:`_fused_adam_kernel`'s lists (per call: row slices of
        parameters, gradients and both moments, coupled decay, lr, decay, decoupled), built once per set
        of tensors.

        The row slices are views of the state tensors, so they stay valid from step to step; they
        are rebuilt only when a tensor is replaced (compaction). Slicing them anew every step cost
        about 0.4 ms of Python per step, held under the GIL that the shards' threads share.
        """
        tensors = (theta, grad, self.m, self.v)
        if self._calls is not None and all(a is b for a, b in zip(tensors, self._calls_for)):
            return self._calls
        w = self.weight_size
        calls: tuple[list, ...] = ([], [], [], [], [], [], [], [])

        def fused(rows: list[int], cols: slice, lr: float, wd: float, dec: float) -> None:
            for slices, t in zip(calls, tensors):
                slices.append([t[r, cols] for r in rows])
            calls[4].append(wd if (wd and dec) else 0.0)  # both decays: the coupled term, then AdamW's
            calls[5].append(lr)
            calls[6].append(dec or wd)
            calls[7].append(bool(dec))

        by_lr: dict[float, list[int]] = {}
        for lr, wd, dec, rows in self._settings():
            fused(rows, slice(0, w), lr, wd, dec)
            by_lr.setdefault(lr, []).extend(rows)
        if theta.shape[1] > w:
            for lr, rows in by_lr.items():
                fused(sorted(rows), slice(w, None), lr, 0.0, 0.0)
        self._calls, self._calls_for = calls, tensors
        return calls


def _fused_adam_kernel(
    params: list[list[torch.Tensor]],
    grads: list[list[torch.Tensor]],
    exp_avgs: list[list[torch.Tensor]],
    exp_avg_sqs: list[list[torch.Tensor]],
    coupled: list[float],
    lrs: list[float],
    decays: list[float],
    decoupled: list[bool],
    step: torch.Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """One call of torch's fused Adam (or AdamW, where ``decoupled[i]``) kernel per group of row slices;
    ``coupled[i]`` is a coupled decay added to the gradient first (both kinds of decay on)."""
    for i in range(len(params)):
        steps = [step for _ in range(len(params[i]))]
        if coupled[i] != 0.0:
            torch._foreach_add_(grads[i], params[i], alpha=coupled[i])
        if decoupled[i]:
            torch._fused_adamw_(
                params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], [], steps, lr=lrs[i], beta1=beta1,
                beta2=beta2, weight_decay=decays[i], eps=eps, amsgrad=False, maximize=False,
            )  # fmt: skip
        else:
            torch._fused_adam_(
                params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], [], steps, lr=lrs[i], beta1=beta1,
                beta2=beta2, weight_decay=decays[i], eps=eps, amsgrad=False, maximize=False,
            )  # fmt: skip


_fused_adam = Kernel(_fused_adam_kernel)


class StackedSGD(_Stacked):
    """SGD with momentum (``torch.optim.SGD`` formulas, dampening 0) with per-row learning rates.

    Example:
        >>> theta, grad = torch.ones(2, 3), torch.ones(2, 3)
        >>> hyper = {k: torch.zeros(2, 1) for k in ("weight_decay", "decoupled_decay")}
        >>> opt = StackedSGD({"lr": torch.tensor([[0.1], [0.2]]), **hyper}, weight_size=3)
        >>> opt.step(theta, grad); theta[:, 0]
        tensor([0.9000, 0.8000])
    """

    state_names = ("buf",)

    def __init__(self, hyper, weight_size, *, momentum=0.0, nesterov=False):
        super().__init__(hyper, weight_size)
        self.momentum, self.nesterov = momentum, nesterov
        self.buf: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        self._decay(theta, grad)
        self.steps += 1
        direction = grad
        if self.momentum:
            if self.buf is None:
                self.buf = grad.clone()
            else:
                self.buf.mul_(self.momentum).add_(grad)
            direction = grad.add_(self.buf, alpha=self.momentum) if self.nesterov else self.buf
        theta.addcmul_(direction, self.hyper["lr"], value=-1)


@torch.no_grad()
def prox_(w: torch.Tensor, lr: torch.Tensor, l1: torch.Tensor, l2: torch.Tensor) -> None:
    """Proximal operator of ``lr·(l1·Σ|w| + l2·Σw²)`` per row, in place: soft-threshold, then shrink.

    Example:
        >>> w = torch.tensor([[0.5, 0.05, -2.0]])
        >>> prox_(w, torch.tensor([[1.0]]), torch.tensor([[0.1]]), torch.tensor([[0.0]])); w
        tensor([[ 0.4000,  0.0000, -1.9000]])
    """
    thresh = lr * l1
    # sign(w) * max(|w| - t, 0), in place: no temporaries beyond one (K, Pw) tensor.
    mag = w.abs().sub_(thresh).clamp_(min=0)
    w.sign_().mul_(mag)
    if bool((l2 != 0).any()):
        w.div_(1 + 2 * lr * l2)


@torch.no_grad()
def max_norm_(weight: torch.Tensor, c: torch.Tensor, eps: float = 1e-7) -> None:
    """Keras ``MaxNorm`` per output unit of ``weight (K, out, ...)``: ``w·clip(n, 0, c)/(eps + n)``.

    Rows whose ``c`` is ``inf`` are left untouched (the Keras formula is not the identity at
    ``c = inf``: it shrinks by ``n/(eps + n)``).

    Example:
        >>> w = torch.tensor([[[3.0, 4.0]], [[3.0, 4.0]]])
        >>> max_norm_(w, torch.tensor([[1.0], [float("inf")]])); w.squeeze(1)
        tensor([[0.6000, 0.8000],
                [3.0000, 4.0000]])
    """
    norms = torch.linalg.vector_norm(weight, dim=tuple(range(2, weight.ndim)), keepdim=True)
    cap = c.reshape(-1, *([1] * (weight.ndim - 1)))
    # Same expression as reglab.constraints.MaxNorm, with a per-row cap.
    scale = torch.where(torch.isinf(cap), torch.ones_like(norms), torch.minimum(norms, cap) / (eps + norms))
    weight.mul_(scale)
