"""The stacked MLP's training forward and backward written out by hand: the population's fast path.

For every step autograd records a graph, allocates each parameter's gradient and then adds it into
the flat gradient buffer (``AccumulateGrad``), which first has to be zeroed. For an MLP without
normalization layers the backward is a few matrix products, so this module computes it directly:

* each weight and bias gradient is written by its product or sum straight into its slice of the
  flat buffer (``out=``): no zeroing pass, no temporary, no accumulation pass;
* ReLU and dropout run in place, and their backward is one multiply and one ``threshold_backward``;
* the cross-entropy gradient with respect to the logits is ``(softmax - target) / batch``.

Other activations take their derivative from autograd on that one operation, so every activation
of ``reglab.models.MLP`` is covered. Networks with BatchNorm / LayerNorm, and the 1-D CNN, use
autograd (``StackedNet.forward``). Measured on one CPU thread, 16 members of MLP 40-256-256-10,
batch 100: 22.5 ms a step through autograd, 19.1 ms with this path (see benchmarks/RESULTS.md).
The results equal autograd's to rounding (tests/population/test_backprop.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from reglab.models import MLP
from reglab.population._loss import correct, nll
from reglab.population._stack import StackedNet

__all__ = ["Tape", "Workspace", "supports", "forward", "backward"]


def supports(net: StackedNet) -> bool:
    """Whether ``net`` has a hand-written backward: an MLP without normalization layers."""
    return net.cls is MLP and net.norm is None


class Workspace:
    """The step's large intermediate tensors, one per role, reused from step to step.

    Allocating them anew every step (six (K, batch, width) tensors for two hidden layers) costs
    page faults until the allocator's heap settles: a 4-epoch fit of 32 members of MLP 40-256-256-10
    on 2 threads page-faulted 73-200 thousand times (0.24-0.43 s of system time) with fresh tensors,
    29-39 thousand times (0.10-0.14 s) with these. A role's tensor is replaced only when its shape
    changes (a last partial batch, compaction).
    """

    def __init__(self) -> None:
        self._tensors: dict[Any, torch.Tensor] = {}

    def get(self, role: Any, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        t = self._tensors.get(role)
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            t = self._tensors[role] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return t


@dataclass
class Tape:
    """What the backward needs from one forward: per hidden layer its input, activation output
    (after dropout), dropout scale and, for activations other than ReLU, the dropout mask and the
    pre-activation."""

    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    masks: list[torch.Tensor | None] = field(default_factory=list)  # None for ReLU (see scales)
    scales: list[torch.Tensor | None] = field(default_factory=list)  # ReLU: (K, 1, 1) 1 / (1 - p_k), or None
    pre: list[torch.Tensor | None] = field(default_factory=list)
    residual: list[bool] = field(default_factory=list)
    last: torch.Tensor | None = None  # input of the output layer
    logp: torch.Tensor | None = None  # (K, C, B) log-probabilities
    target: torch.Tensor | None = None  # (K, 1, B) class indices
    smoothing: torch.Tensor | None = None  # (K, 1) label smoothing, None when all are 0
    workspace: Workspace = field(default_factory=Workspace)  # holds the tensors above until the next forward


def forward(
    net: StackedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    drop: Any,
    smoothing: torch.Tensor | None,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Tape]:
    """Per-member mean cross-entropy ``(K,)``, correct counts ``(K,)`` and the tape for :func:`backward`.

    ``x`` is ``(B, F)`` (shared) or ``(K, B, F)``; ``y`` is ``(B,)`` or ``(K, B)``; ``drop`` and
    ``smoothing`` are as in ``Shard`` (mask source or ``None``; ``(K, 1)`` label smoothing or ``None``).
    ``drop(shape, out=...)`` returns the mask, whose kept units equal ``drop.scale`` ``(K, 1, 1)``.
    The tape's tensors live in ``workspace`` (a fresh one when ``None``) until its next forward.
    """
    tape = Tape() if workspace is None else Tape(workspace=workspace)
    ws = tape.workspace
    params, k = net.params, net.k
    relu = net.kwargs["activation"] == "relu"
    h = x.expand(k, *x.shape) if x.ndim == 2 else x
    with torch.no_grad():
        for i in range(len(net.kwargs["hidden"])):
            w, b = params[f"hidden.{i}.linear.weight"], params[f"hidden.{i}.linear.bias"]
            shape = (k, h.shape[1], w.shape[1])
            pre = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), out=ws.get(("pre", i), shape, h))
            out = pre.clamp_min_(0) if relu else net.act(pre)
            # ReLU's backward needs no mask (see backward), so its masks share one buffer per shape.
            role = ("mask", shape) if relu else ("mask", i)
            mask = drop(out.shape, out=ws.get(role, shape, h)) if drop is not None else None
            if mask is not None:
                out.mul_(mask)  # ReLU: out > 0 exactly where the unit is active and kept
            skip = net.kwargs["residual"] and h.shape[-1] == out.shape[-1]
            tape.inputs.append(h)
            tape.outputs.append(out)
            tape.masks.append(None if relu else mask)
            tape.scales.append(drop.scale if relu and mask is not None else None)
            tape.pre.append(None if relu else pre)
            tape.residual.append(skip)
            h = h + out if skip else out
        w, b = params["out.weight"], params["out.bias"]
        # (K, C, B): for the few classes of an output layer this product, and log_softmax over C,
        # are several times faster on CPU than in the (K, B, C) layout (see _stack._BatchedLinear).
        logits = torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2))
        logp = torch.log_softmax(logits, dim=1)
    target = (y.expand(k, y.shape[-1]) if y.ndim == 1 else y).unsqueeze(1)
    tape.last, tape.logp, tape.target, tape.smoothing = h, logp, target, smoothing
    return nll(logp, target, smoothing), correct(logits.transpose(1, 2), y), tape


@torch.no_grad()
def backward(net: StackedNet, tape: Tape) -> None:
    """Write the gradient of ``sum_k loss_k`` into ``net.grad`` (every parameter's slice is overwritten)."""
    params = net.params
    logp, target, smoothing = tape.logp, tape.target, tape.smoothing
    assert logp is not None and target is not None and tape.last is not None
    batch = logp.shape[-1]
    # d(mean_b CE)/d logits = (softmax - (1 - eps) onehot - eps / C) / B, member by member.
    g = logp.exp_()
    if smoothing is None:
        g.scatter_add_(1, target, torch.full(target.shape, -1.0, dtype=g.dtype, device=g.device))
    else:
        eps = smoothing.unsqueeze(-1)  # (K, 1, 1)
        g.sub_(eps / g.shape[1])
        g.scatter_add_(1, target, (eps - 1).expand(target.shape))
    g.div_(batch)
    w = params["out.weight"]
    torch.bmm(g, tape.last, out=w.grad)
    torch.sum(g, 2, out=params["out.bias"].grad)
    if not tape.inputs:
        return
    ws = tape.workspace
    grad = torch.bmm(g.transpose(1, 2), w, out=ws.get(("grad", len(tape.inputs)), tape.last.shape, g))
    for i in reversed(range(len(tape.inputs))):
        mask, scale, skip = tape.masks[i], tape.scales[i], tape.residual[i]
        if tape.pre[i] is None:
            # ReLU after dropout: out = relu(pre) * scale_k * keep, so the gradient passes (times
            # scale_k) exactly where out > 0; the mask itself is not needed. In place unless the
            # skip path still reads grad below.
            g = _activation_backward(net, grad, tape.outputs[i], None, in_place=not skip)
            if scale is not None:
                g.mul_(scale)
        else:
            g = grad
            if mask is not None:
                g = grad * mask if skip else grad.mul_(mask)  # the skip path still needs the unmasked grad
            # In place unless g is still grad and the skip path reads grad below.
            g = _activation_backward(net, g, tape.outputs[i], tape.pre[i], in_place=g is not grad or not skip)
        w = params[f"hidden.{i}.linear.weight"]
        below = None
        if i > 0:
            below = torch.bmm(g, w, out=ws.get(("grad", i), tape.inputs[i].shape, g))
            if skip:
                below.add_(grad)
        torch.bmm(g.transpose(1, 2), tape.inputs[i], out=w.grad)
        torch.sum(g, 1, out=params[f"hidden.{i}.linear.bias"].grad)
        grad = below  # type: ignore[assignment]


def _activation_backward(
    net: StackedNet, grad: torch.Tensor, out: torch.Tensor, pre: torch.Tensor | None, *, in_place: bool
) -> torch.Tensor:
    if pre is None:  # ReLU: out (after dropout) is > 0 exactly where the gradient passes
        if in_place:
            return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
        return torch.ops.aten.threshold_backward(grad, out, 0)
    # Any other activation: its own derivative, from autograd on that one operation.
    with torch.enable_grad():
        leaf = pre.detach().requires_grad_(True)
        (result,) = torch.autograd.grad(net.act(leaf), leaf, grad)
    return result
