"""The stacked MLP's training forward and backward written out by hand: the population's fast path.

For every step autograd records a graph, allocates each parameter's gradient and then adds it into
the flat gradient buffer (``AccumulateGrad``), which first has to be zeroed. For an MLP the backward
is a few matrix products and, with norm layers, torch's own norm backward ops, so this module
computes it directly:

* each weight and bias gradient is written by its product or sum straight into its slice of the
  flat buffer (``out=``): no zeroing pass, no temporary, no accumulation pass;
* ReLU and dropout run in place, and their backward is one multiply and one ``threshold_backward``;
* the cross-entropy gradient with respect to the logits is ``(softmax - target) / batch``.

Other activations take their derivative from the backward op autograd runs for them
(``gelu_backward``, ``tanh_backward``, ...), so every activation of ``reglab.models.MLP`` is
covered; LayerNorm calls ``native_layer_norm`` and its backward op, as autograd does; BatchNorm is
written out with torch's formulas (``_stack.batch_norm_train``: torch's CPU kernel's sums depend on
the thread count). The 1-D CNN uses autograd (``StackedNet.forward``). Measured on
one CPU thread, 16 members of MLP 40-256-256-10, batch 100: 22.5 ms a step through autograd,
19.1 ms with this path (see benchmarks/RESULTS.md). The results equal autograd's to rounding
(tests/population/test_backprop.py).

The forward (dropout draws included) and the backward are two kernels compiled by TorchScript
(see ``_torchscript``): a step's hundred-odd ops then run without Python's interpreter lock, so
the shards' threads do not take turns on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from reglab.models import MLP
from reglab.population._dropout import Dropout, fill_mask
from reglab.population._loss import correct, nll
from reglab.population._stack import StackedNet, batch_norm_train
from reglab.population._torchscript import Kernel

__all__ = ["Tape", "Workspace", "supports", "forward", "backward"]


def supports(net: StackedNet) -> bool:
    """Whether ``net`` has a hand-written backward: an MLP (BatchNorm with a running-average momentum)."""
    return net.cls is MLP and all(m is not None for m in net.momentum.values())


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
    """What the backward needs from one forward: per hidden layer its input, its activation output
    (after dropout), its norm layer's saved tensors and, for activations other than ReLU, its dropout
    mask and the activation's input."""

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    masks: list[torch.Tensor | None]  # None for ReLU, whose backward needs no mask (see _backward_kernel)
    pre: list[torch.Tensor | None]  # the activation's input; None for ReLU
    norm_saved: list[list[torch.Tensor]]  # per hidden layer, what its norm layer's backward needs
    scale: torch.Tensor | None  # (K, 1, 1) value of a kept unit, 1 / (1 - p_k); None without dropout
    last: torch.Tensor  # input of the output layer
    logp: torch.Tensor  # (K, C, B) log-probabilities
    target: torch.Tensor  # (K, 1, B) class indices
    smoothing: torch.Tensor | None  # (K, 1) label smoothing, None when all are 0
    workspace: Workspace  # holds the tensors above until the next forward


# ---------------------------------------------------------------------------------------------------
# The kernels: TorchScript-compatible functions of tensors (see _torchscript), compiled at import.


def _activate(pre: torch.Tensor, activation: str) -> torch.Tensor:
    """``reglab.models.MLP``'s activation (torch's defaults); ReLU in place."""
    if activation == "relu":
        return pre.clamp_min_(0)
    if activation == "gelu":
        return torch.nn.functional.gelu(pre)
    if activation == "tanh":
        return torch.tanh(pre)
    if activation == "elu":
        return torch.nn.functional.elu(pre)
    if activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(pre)
    return torch.nn.functional.silu(pre)


def _activation_grad(grad: torch.Tensor, pre: torch.Tensor, activation: str) -> torch.Tensor:
    """The gradient through a non-ReLU activation at ``pre``, by the backward op autograd runs for it."""
    if activation == "gelu":
        return torch.ops.aten.gelu_backward(grad, pre)
    if activation == "tanh":
        return torch.ops.aten.tanh_backward(grad, torch.tanh(pre))
    if activation == "elu":
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, False, pre)
    if activation == "leaky_relu":
        return torch.ops.aten.leaky_relu_backward(grad, pre, 0.01, False)
    return torch.ops.aten.silu_backward(grad, pre)


def _normalize(
    pre: torch.Tensor, norm: str, params: list[torch.Tensor], eps: float, momentum: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``reglab.models.MLP``'s norm layer on ``pre (K, B, F)`` as ``StackedNet`` computes it, and what its
    backward needs. ``params`` is ``[weight, bias]`` ``(K, F)``, then for BatchNorm ``running_mean``,
    ``running_var`` ``(K, F)`` and ``num_batches_tracked`` ``(K,)``, updated in place."""
    k, batch, features = pre.shape[0], pre.shape[1], pre.shape[2]
    if norm == "layer":
        normalized, mean, rstd = torch.native_layer_norm(pre, [features], None, None, eps)
        return normalized * params[0].unsqueeze(1) + params[1].unsqueeze(1), [pre, normalized, mean, rstd]
    # BatchNorm over K*F features of (B, K*F) is BatchNorm over F features of every member (written
    # out, not torch's kernel, whose sums depend on the thread count: see batch_norm_train).
    flat = pre.transpose(0, 1).reshape(batch, k * features)
    params[4].add_(1)
    out, centered, invstd = batch_norm_train(
        flat, params[0].reshape(-1), params[1].reshape(-1), params[2].view(-1), params[3].view(-1),
        momentum, eps,
    )  # fmt: skip
    return out.view(batch, k, features).transpose(0, 1), [centered, invstd]


def _normalize_backward(
    grad: torch.Tensor,
    norm: str,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    saved: list[torch.Tensor],
    eps: float,
) -> torch.Tensor:
    """The gradient with respect to the norm layer's input; its weight and bias gradients go to ``grads``."""
    k, batch, features = grad.shape[0], grad.shape[1], grad.shape[2]
    if norm == "layer":
        pre, normalized, mean, rstd = saved[0], saved[1], saved[2], saved[3]
        torch.sum(grad * normalized, 1, out=grads[0])
        torch.sum(grad, 1, out=grads[1])
        result = torch.ops.aten.native_layer_norm_backward(
            grad * params[0].unsqueeze(1), pre, [features], mean, rstd, None, None, [True, False, False]
        )
        grad_pre = result[0]
        assert grad_pre is not None
        return grad_pre
    # torch's BatchNorm backward formulas (native_batch_norm_backward's), with sums over dim 0, whose
    # order does not depend on the thread count.
    centered, invstd = saved[0], saved[1]
    dy = grad.transpose(0, 1).reshape(batch, k * features).to(centered.dtype)
    sum_dy = dy.sum(0)
    dotp = (dy * centered).sum(0)
    grads[0].copy_((dotp * invstd).view(k, features))
    grads[1].copy_(sum_dy.view(k, features))
    grad_flat = (dy - sum_dy / batch).addcmul_(centered, dotp * invstd * invstd / batch, value=-1)
    grad_flat.mul_(invstd * params[0].reshape(-1))
    return grad_flat.to(grad.dtype).view(batch, k, features).transpose(0, 1)


def _forward_kernel(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    activation: str,
    residual: bool,
    norm: str,
    norm_params: list[list[torch.Tensor]],
    norm_eps: list[float],
    norm_momentum: list[float],
    pre_buffers: list[torch.Tensor],
    mask_buffers: list[torch.Tensor],
    given_masks: list[torch.Tensor],
    draws: list[list[torch.Tensor]],
    generators: list[torch.Generator],
    uniforms: list[torch.Tensor],
    below: torch.Tensor | None,
    scale: torch.Tensor | None,
    smoothing: torch.Tensor | None,
) -> tuple[
    torch.Tensor,
    torch.Tensor,
    list[torch.Tensor],
    list[torch.Tensor],
    list[torch.Tensor | None],
    list[torch.Tensor | None],
    list[list[torch.Tensor]],
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
]:
    """Loss, correct counts and the tape's tensors (inputs, outputs, masks, activation inputs, what
    the norm layers' backward needs, last hidden output, log-probabilities, targets). ``norm`` is
    ``""``, ``"batch"`` or ``"layer"``, with ``norm_params[i]`` as :func:`_normalize` takes them.
    Hidden layer i's mask is ``given_masks[i]`` if any are given, else drawn by :func:`fill_mask`
    from ``draws[i]``, ``generators``, ``uniforms[i]`` and ``below`` into ``mask_buffers[i]``; no
    mask if ``below`` is ``None``."""
    k = weights[0].shape[0]
    relu = activation == "relu"
    h = x.expand(k, x.shape[0], x.shape[1]) if x.dim() == 2 else x
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    masks: list[torch.Tensor | None] = []
    pres: list[torch.Tensor | None] = []
    norm_saved: list[list[torch.Tensor]] = []
    for i in range(len(weights) - 1):
        pre = torch.baddbmm(biases[i].unsqueeze(1), h, weights[i].transpose(1, 2), out=pre_buffers[i])
        if norm != "":
            pre, saved = _normalize(pre, norm, norm_params[i], norm_eps[i], norm_momentum[i])
            norm_saved.append(saved)
        out = _activate(pre, activation)
        mask: torch.Tensor | None = None
        if len(given_masks) > 0:
            mask = given_masks[i]
        elif below is not None and scale is not None:
            mask = fill_mask(draws[i], generators, uniforms[i], below, scale, mask_buffers[i])
        if mask is not None:
            out.mul_(mask)  # ReLU: out > 0 exactly where the unit is active and kept
        inputs.append(h)
        outputs.append(out)
        masks.append(None if relu else mask)
        pres.append(None if relu else pre)
        # A shared (B, F) input broadcasts against (K, B, F) in the residual sum.
        h = h + out if residual and h.shape[-1] == out.shape[-1] else out
    # (K, C, B): for the few classes of an output layer this product, and log_softmax over C,
    # are several times faster on CPU than in the (K, B, C) layout (see _stack._BatchedLinear).
    logits = torch.baddbmm(biases[-1].unsqueeze(2), weights[-1], h.transpose(1, 2))
    logp = torch.log_softmax(logits, dim=1)
    target = (y.expand(k, y.shape[-1]) if y.dim() == 1 else y).unsqueeze(1)
    loss = nll(logp, target, smoothing)
    right = correct(logits.transpose(1, 2), y)
    return loss, right, inputs, outputs, masks, pres, norm_saved, h, logp, target


def _backward_kernel(
    weights: list[torch.Tensor],
    weight_grads: list[torch.Tensor],
    bias_grads: list[torch.Tensor],
    activation: str,
    residual: bool,
    norm: str,
    norm_params: list[list[torch.Tensor]],
    norm_grads: list[list[torch.Tensor]],
    norm_saved: list[list[torch.Tensor]],
    norm_eps: list[float],
    inputs: list[torch.Tensor],
    outputs: list[torch.Tensor],
    masks: list[torch.Tensor | None],
    pres: list[torch.Tensor | None],
    scale: torch.Tensor | None,
    last: torch.Tensor,
    logp: torch.Tensor,
    target: torch.Tensor,
    smoothing: torch.Tensor | None,
    grad_buffers: list[torch.Tensor],
) -> None:
    """Overwrite ``weight_grads``, ``bias_grads`` and ``norm_grads`` with the gradient of ``sum_k loss_k``;
    the gradient with respect to hidden layer i's output (i >= 1) goes into ``grad_buffers[i - 1]``.
    ``logp`` is consumed."""
    n = len(inputs)
    # d(mean_b CE)/d logits = (softmax - (1 - eps) onehot - eps / C) / B, member by member.
    g = logp.exp_()
    if smoothing is None:
        g.scatter_add_(1, target, torch.full(target.shape, -1.0, dtype=g.dtype, device=g.device))
    else:
        eps = smoothing.unsqueeze(-1)  # (K, 1, 1)
        g.sub_(eps / g.shape[1])
        g.scatter_add_(1, target, (eps - 1).expand(target.shape))
    g.div_(logp.shape[-1])
    torch.bmm(g, last, out=weight_grads[n])
    torch.sum(g, 2, out=bias_grads[n])
    if n == 0:
        return
    grad = torch.bmm(g.transpose(1, 2), weights[n], out=grad_buffers[n - 1])
    for i in range(n - 1, -1, -1):
        skip = residual and inputs[i].shape[-1] == outputs[i].shape[-1]
        pre = pres[i]
        if pre is None:
            # ReLU after dropout: out = relu(pre) * scale_k * keep, so the gradient passes (times
            # scale_k) exactly where out > 0; the mask itself is not needed. In place unless the
            # skip path still reads grad below.
            if skip:
                gi = torch.ops.aten.threshold_backward(grad, outputs[i], 0)
            else:
                gi = torch.ops.aten.threshold_backward(grad, outputs[i], 0, grad_input=grad)
            if scale is not None:
                gi.mul_(scale)
        else:
            gi = grad
            mask = masks[i]
            if mask is not None:
                gi = grad * mask if skip else grad.mul_(mask)  # the skip path still needs the unmasked grad
            gi = _activation_grad(gi, pre, activation)
        if norm != "":
            gi = _normalize_backward(gi, norm, norm_params[i], norm_grads[i], norm_saved[i], norm_eps[i])
        below = grad
        if i > 0:
            below = torch.bmm(gi, weights[i], out=grad_buffers[i - 1])
            if skip:
                below.add_(grad)
        torch.bmm(gi.transpose(1, 2), inputs[i], out=weight_grads[i])
        torch.sum(gi, 1, out=bias_grads[i])
        grad = below


_forward = Kernel(_forward_kernel)
_backward = Kernel(_backward_kernel)


# ---------------------------------------------------------------------------------------------------


def forward(
    net: StackedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    drop: Any,
    smoothing: torch.Tensor | None,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Tape]:
    """Per-member mean cross-entropy ``(K,)``, correct counts ``(K,)`` and the tape for :func:`backward`.

    ``x`` is ``(B, F)`` (shared) or ``(K, B, F)``; ``y`` is ``(B,)`` or ``(K, B)``; ``smoothing`` is the
    ``(K, 1)`` label smoothing or ``None``. ``drop`` is ``None``, a ``Dropout`` (its masks drawn inside
    the compiled kernel) or any callable ``drop(shape) -> mask`` with a ``scale`` attribute, the
    ``(K, 1, 1)`` value of a kept unit. The tape's tensors live in ``workspace`` (a
    fresh one when ``None``) until its next forward.
    """
    ws = Workspace() if workspace is None else workspace
    weights, biases, _, _ = net.linears()
    relu = net.kwargs["activation"] == "relu"
    like = net.theta
    shapes = [(net.k, x.shape[-2], width) for width in net.kwargs["hidden"]]
    pre_buffers = [ws.get(("pre", i), shape, like) for i, shape in enumerate(shapes)]
    mask_buffers: list[torch.Tensor] = []
    given: list[torch.Tensor] = []
    draws: list[list[torch.Tensor]] = []
    uniforms: list[torch.Tensor] = []
    generators: list[torch.Generator] = []
    below = scale = None
    if isinstance(drop, Dropout):
        if drop.active:
            below, scale, generators = drop.below, drop.scale, drop.generators
            for i, shape in enumerate(shapes):
                # ReLU's backward needs no mask, so its layers share one mask buffer per shape.
                mask_buffers.append(ws.get(("mask", shape) if relu else ("mask", i), shape, like))
                rows, u = drop.plan(shape)
                draws.append(rows)
                uniforms.append(u)
    elif drop is not None:
        layer_masks = [drop(torch.Size(shape)) for shape in shapes]
        if all(mask is not None for mask in layer_masks):
            given, scale = layer_masks, drop.scale
    norm, norm_params, norm_eps, norm_momentum = net.norm_layers()
    with torch.no_grad():
        loss, right, inputs, outputs, masks, pres, norm_saved, last, logp, target = _forward(
            x, y, weights, biases, net.kwargs["activation"], net.kwargs["residual"], norm, norm_params,
            norm_eps, norm_momentum, pre_buffers, mask_buffers, given, draws, generators, uniforms, below,
            scale, smoothing,
        )  # fmt: skip
    tape = Tape(inputs, outputs, masks, pres, norm_saved, scale, last, logp, target, smoothing, ws)
    return loss, right, tape


def backward(net: StackedNet, tape: Tape) -> None:
    """Write the gradient of ``sum_k loss_k`` into ``net.grad`` (every parameter's slice is overwritten)."""
    weights, _, weight_grads, bias_grads = net.linears()
    shapes = [h.shape for h in tape.inputs[1:]] + [tape.last.shape]  # of hidden layer i's output, i >= 1
    grad_buffers = [tape.workspace.get(("grad", i), s, tape.last) for i, s in enumerate(shapes, start=1)]
    norm, norm_params, norm_eps, _ = net.norm_layers()
    norm_grads = [[params[0].grad, params[1].grad] for params in norm_params]
    with torch.no_grad():
        _backward(
            weights, weight_grads, bias_grads, net.kwargs["activation"], net.kwargs["residual"], norm,
            norm_params, norm_grads, tape.norm_saved, norm_eps, tape.inputs, tape.outputs, tape.masks,
            tape.pre, tape.scale, tape.last, tape.logp, tape.target, tape.smoothing, grad_buffers,
        )  # fmt: skip

