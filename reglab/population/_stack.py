"""K copies of one reglab model as stacked tensors: one flat (K, P) parameter buffer, batched forward.

The parameters of all members live in one ``theta`` buffer of shape ``(K, P)`` (weights first, then
biases and norm parameters), and their gradients in one ``grad`` buffer of the same shape. The
optimizer then works on two or three big tensors instead of K x (number of layers) small ones,
which is where the prototype lost 30 % of its time. Each parameter is a leaf *view* into ``theta``
whose ``.grad`` is a view into ``grad``, so autograd accumulates straight into the flat buffer.

Layouts mirrored exactly (see ``docs/architecture.md``): ``reglab.models.MLP`` (hidden blocks
``Linear -> norm -> activation -> dropout``, optional residual) and ``reglab.models.CNN1D``
(each convolution as unfolded windows times every member's weight in one batched product).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reglab.models import CNN1D, MLP, make_activation

__all__ = ["StackedNet", "arch_kwargs"]


def arch_kwargs(template: nn.Module) -> tuple[type[nn.Module], dict[str, Any]]:
    """The class and constructor arguments that rebuild ``template`` (dropout excluded)."""
    if isinstance(template, MLP):
        return MLP, dict(
            in_features=template.in_features,
            out_features=template.out_features,
            hidden=template.hidden_sizes,
            activation=template.activation,
            norm=template.norm,
            residual=template.residual,
        )
    if isinstance(template, CNN1D):
        return CNN1D, dict(
            length=template.length,
            out_features=template.out_features,
            channels=template.channels,
            activation=template.activation,
            norm=template.norm,
        )
    raise TypeError(type(template).__name__)  # validated by the caller


def _is_weight(name: str, tensor: torch.Tensor) -> bool:
    # reglab's default selection: tensors with ndim >= 2 outside normalization layers.
    return tensor.ndim >= 2 and ".norm" not in name and not name.startswith("norms.")


@dataclass(frozen=True)
class _Slot:
    name: str
    shape: tuple[int, ...]
    offset: int
    numel: int


class StackedNet:
    """The stacked parameters, buffers and batched forward pass of K members of one model.

    Args:
        members: K modules of one architecture (``MLP`` or ``CNN1D``), already initialized.
        dtype: Floating dtype of the stacked tensors.
        device: Device of the stacked tensors.
    """

    def __init__(self, members: list[nn.Module], *, dtype: torch.dtype, device: torch.device):
        first = members[0]
        self.cls, self.kwargs = arch_kwargs(first)
        self.dtype, self.device = dtype, torch.device(device)
        named = list(first.named_parameters())
        order = sorted(range(len(named)), key=lambda i: not _is_weight(*named[i]))  # weights first
        self.slots: list[_Slot] = []
        offset = 0
        for i in order:
            name, p = named[i]
            self.slots.append(_Slot(name, tuple(p.shape), offset, p.numel()))
            offset += p.numel()
        # Rows padded to a multiple of 64 bytes: every member's tensors then have the same memory
        # alignment whichever shard (row) it sits in, and MKL's results depend on alignment.
        align = max(1, 64 // torch.empty(0, dtype=dtype).element_size())
        self.size = -(-offset // align) * align
        self.weight_size = sum(s.numel for s, i in zip(self.slots, order) if _is_weight(*named[i]))
        with torch.no_grad():
            pad = torch.zeros(self.size - offset)
            rows = [
                torch.cat([*(dict(m.named_parameters())[s.name].reshape(-1) for s in self.slots), pad])
                for m in members
            ]
            theta = torch.stack(rows).to(device=self.device, dtype=dtype)
            self.buffers = {
                name: torch.stack([dict(m.named_buffers())[name] for m in members]).to(self.device)
                for name, _ in first.named_buffers()
            }
        for name, b in self.buffers.items():
            if b.is_floating_point():
                self.buffers[name] = b.to(dtype)
        self._bind(theta)
        self.act = make_activation(self.kwargs["activation"])
        self.norm = self.kwargs["norm"]
        self.eps = {n: m.eps for n, m in first.named_modules() if hasattr(m, "eps")}
        self.momentum = {n: m.momentum for n, m in first.named_modules() if hasattr(m, "momentum")}

    # ----------------------------------------------------------------- storage
    @property
    def k(self) -> int:
        return self.theta.shape[0]

    def _bind(self, theta: torch.Tensor) -> None:
        self.theta = theta
        self.grad = torch.zeros_like(theta)
        k = theta.shape[0]
        self.params: dict[str, torch.Tensor] = {}
        for s in self.slots:
            p = theta[:, s.offset : s.offset + s.numel].view(k, *s.shape)
            p.requires_grad_(True)
            p.grad = self.grad[:, s.offset : s.offset + s.numel].view(k, *s.shape)
            self.params[s.name] = p
        self._linears: tuple[list[torch.Tensor], ...] | None = None
        self._norm_layers: tuple[str, list[list[torch.Tensor]], list[float], list[float]] | None = None
        self._norm_layers_for: dict[str, torch.Tensor] | None = None

    def linears(self) -> tuple[list[torch.Tensor], ...]:
        """An MLP's stacked weights, biases and their gradient views, layer by layer (the hidden
        layers, then the output layer); built once per set of tensors."""
        if self._linears is None:
            names = [f"hidden.{i}.linear" for i in range(len(self.kwargs["hidden"]))] + ["out"]
            weights = [self.params[f"{name}.weight"] for name in names]
            biases = [self.params[f"{name}.bias"] for name in names]
            self._linears = (weights, biases, [w.grad for w in weights], [b.grad for b in biases])
        return self._linears  # type: ignore[return-value]

    def norm_layers(self) -> tuple[str, list[list[torch.Tensor]], list[float], list[float]]:
        """An MLP's norm kind (``""``, ``"batch"``, ``"layer"``) and, per hidden layer, its stacked
        ``[weight, bias]`` (then BatchNorm's ``running_mean``, ``running_var``, ``num_batches_tracked``),
        eps and momentum; built once per set of tensors (and per ``buffers`` dict: a test may replace it)."""
        if self._norm_layers is None or self._norm_layers_for is not self.buffers:
            self._norm_layers_for = self.buffers
            names = [f"hidden.{i}.norm" for i in range(len(self.kwargs["hidden"]))] if self.norm else []
            layers = [[self.params[f"{name}.weight"], self.params[f"{name}.bias"]] for name in names]
            if self.norm == "batch":
                statistics = ("running_mean", "running_var", "num_batches_tracked")
                for name, layer in zip(names, layers):
                    layer += [self.buffers[f"{name}.{b}"] for b in statistics]
            eps = [float(self.eps[name]) for name in names]
            momentum = [float(self.momentum.get(name) or 0.0) for name in names]  # LayerNorm has none
            self._norm_layers = (self.norm or "", layers, eps, momentum)
        return self._norm_layers

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the rows ``keep`` (compaction: dropped members stop costing compute)."""
        with torch.no_grad():
            self.buffers = {n: b.index_select(0, keep) for n, b in self.buffers.items()}
            self._bind(self.theta.index_select(0, keep))

    def weights(self) -> torch.Tensor:
        """The ``(K, Pw)`` view of every member's selected weights (no biases, no norm parameters)."""
        return self.theta[:, : self.weight_size]

    def weight_views(self) -> list[torch.Tensor]:
        """Per-tensor ``(K, out, ...)`` views of the weights, for per-output-unit constraints."""
        return [
            self.theta[:, s.offset : s.offset + s.numel].view(self.k, *s.shape)
            for s in self.slots
            if s.offset < self.weight_size
        ]

    def build(self, row: torch.Tensor, buffers: dict[str, torch.Tensor], dropout: float) -> nn.Module:
        """An ordinary module (``MLP`` / ``CNN1D``) holding one member's flat parameters and buffers."""
        with torch.random.fork_rng(devices=[]):  # building initializes: keep the caller's RNG as it was
            module = self.cls(**self.kwargs, dropout=dropout)
        # Cast before loading: loading float64 weights into a float32 module would round them.
        module = module.to(device=row.device, dtype=row.dtype)
        state = {s.name: row[s.offset : s.offset + s.numel].view(s.shape).clone() for s in self.slots}
        state.update({n: b.clone() for n, b in buffers.items()})
        module.load_state_dict(state)
        return module

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, *, train: bool, drop: Any = None) -> torch.Tensor:
        """Logits ``(K, B, classes)`` from ``x`` of shape ``(B, F)`` (shared) or ``(K, B, F)``.

        ``drop(shape) -> mask or None`` supplies the dropout mask (scaled by ``1 / (1 - p_k)``).
        """
        if self.cls is MLP:
            return self._mlp(x, train, drop)
        return self._cnn(x, train, drop)

    def _linear(self, name: str, h: torch.Tensor) -> torch.Tensor:
        w, b = self.params[f"{name}.weight"], self.params[f"{name}.bias"]
        if h.ndim == 2:  # shared input: one (B, in) matrix against K weight matrices
            h = h.expand(w.shape[0], *h.shape)
        return _BatchedLinear.apply(h, w, b, name == "out" and w.shape[1] < _NARROW)

    def _mlp(self, x: torch.Tensor, train: bool, drop: Any) -> torch.Tensor:
        h = x  # the caller flattens: (B, F) shared or (K, B, F) per member
        for i in range(len(self.kwargs["hidden"])):
            pre = f"hidden.{i}"
            y = self._linear(f"{pre}.linear", h)
            y = self._norm1d(f"{pre}.norm", y, train)
            y = self.act(y)
            if train and drop is not None:
                mask = drop(y.shape)
                if mask is not None:
                    y = y * mask
            # A shared (B, F) input broadcasts against (K, B, F) in the residual sum.
            h = h + y if self.kwargs["residual"] and h.shape[-1] == y.shape[-1] else y
        return self._linear("out", h)

    def _norm1d(self, name: str, y: torch.Tensor, train: bool) -> torch.Tensor:
        if self.norm is None:
            return y
        w = self.params[f"{name}.weight"].unsqueeze(1)
        b = self.params[f"{name}.bias"].unsqueeze(1)
        eps = self.eps[name]
        if self.norm == "layer":
            return F.layer_norm(y, y.shape[-1:], eps=eps) * w + b
        # BatchNorm over K*F features of (B, K*F) is BatchNorm over F features of every member.
        k, b_size, f = y.shape
        flat = y.transpose(0, 1).reshape(b_size, k * f)
        if train:
            self.buffers[f"{name}.num_batches_tracked"].add_(1)
            out = batch_norm_train(
                flat, w.reshape(-1), b.reshape(-1), self.buffers[f"{name}.running_mean"].view(-1),
                self.buffers[f"{name}.running_var"].view(-1), self.momentum[name], eps,
            )[0]  # fmt: skip
            return out.view(b_size, k, f).transpose(0, 1)
        out = F.batch_norm(
            flat,
            self.buffers[f"{name}.running_mean"].view(-1),
            self.buffers[f"{name}.running_var"].view(-1),
            w.reshape(-1),
            b.reshape(-1),
            training=train,
            momentum=self.momentum[name],
            eps=eps,
        )
        return out.view(b_size, k, f).transpose(0, 1)

    def _cnn(self, x: torch.Tensor, train: bool, drop: Any) -> torch.Tensor:
        k = self.k
        # Shared (B, L): every group sees the same signal; per member (K, B, L) -> (B, K, L).
        h = x.unsqueeze(1).expand(x.shape[0], k, x.shape[1]) if x.ndim == 2 else x.transpose(0, 1)
        h = h.contiguous()
        for i in range(3):
            h = self._conv(f"convs.{i}", h)
            h = self.act(self._norm_map(f"norms.{i}", h, train))
        h = h.reshape(h.shape[0], k, -1).transpose(0, 1)  # (K, B, C * L_out), channel-major as flatten(1)
        if train and drop is not None:
            mask = drop(h.shape)
            if mask is not None:
                h = h * mask
        return self._linear("out", h)

    def _conv(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """Every member's stride-2, padding-1 ``Conv1d`` on ``h (B, K*C_in, L)``, as ``(B, K*C, L_out)``.

        The windows are unfolded and multiplied by each member's ``(C, C_in*k)`` weight in one batched
        product, rather than run as a convolution with one group per member: oneDNN's grouped
        convolution is slow for many small groups (K=16, batch 100, forward and backward, one
        thread: 8.8 against 40.5 ms for the 1-to-25-channel first layer of ``CNN1D``, 11.5 against
        14.4 ms for the third; 21.4 against 18.3 ms for the second).
        """
        w, b = self.params[f"{name}.weight"], self.params[f"{name}.bias"]  # (K, C, C_in, k), (K, C)
        k, channels, c_in, size = w.shape
        batch, length = h.shape[0], h.shape[2]
        # (B, K, C_in, L_out, k): per example, member and input channel, the L_out windows of k taps
        windows = F.pad(h, (1, 1)).view(batch, k, c_in, length + 2).unfold(3, size, 2)
        l_out = windows.shape[3]
        columns = windows.permute(1, 0, 3, 2, 4).reshape(k, batch * l_out, c_in * size)
        out = torch.baddbmm(b.unsqueeze(1), columns, w.reshape(k, channels, c_in * size).transpose(1, 2))
        return out.view(k, batch, l_out, channels).permute(1, 0, 3, 2).reshape(batch, k * channels, l_out)

    def _norm_map(self, name: str, h: torch.Tensor, train: bool) -> torch.Tensor:
        if self.norm is None:
            return h
        w = self.params[f"{name}.weight"].reshape(-1)
        b = self.params[f"{name}.bias"].reshape(-1)
        if self.norm == "layer":  # GroupNorm(1, C) per member == GroupNorm(K, K*C) on the stack
            return F.group_norm(h, self.k, w, b, self.eps[name])
        if train:
            self.buffers[f"{name}.num_batches_tracked"].add_(1)
        if train and h.shape[2] == 1:  # torch's kernel takes (B, K*C, 1) as (B, K*C): see batch_norm_train
            mean, var = (self.buffers[f"{name}.running_{s}"].view(-1) for s in ("mean", "var"))
            out = batch_norm_train(h.flatten(1), w, b, mean, var, self.momentum[name], self.eps[name])[0]
            return out.unsqueeze(2)
        # BatchNorm over K*C channels is BatchNorm over C channels of every member.
        return F.batch_norm(
            h,
            self.buffers[f"{name}.running_mean"].view(-1),
            self.buffers[f"{name}.running_var"].view(-1),
            w,
            b,
            training=train,
            momentum=self.momentum[name],
            eps=self.eps[name],
        )


def batch_norm_train(
    flat: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-mode BatchNorm of ``flat (B, C)`` over its batch, equal to ``F.batch_norm`` to rounding,
    running statistics updated in place (as torch's, the variance unbiased there); returns the output and,
    for the backward, ``flat - mean`` and ``1 / sqrt(var + eps)`` (in float32 for float16 / bfloat16).

    Written out because that kernel splits a (B, C) batch among the intra-op threads and adds their
    partial sums, so a population's results depended on its shards' thread count (``threads=1`` against
    ``2``, 6e-10 in float64 after 12 Adam steps); a sum over dim 0 is one order whatever the threads.
    """
    batch = flat.shape[0]
    # float16 / bfloat16 in float32, as torch's kernel computes them (the statistics would lose digits).
    half = flat.dtype == torch.float16 or flat.dtype == torch.bfloat16
    x = flat.float() if half else flat
    mean = x.sum(0) / batch
    centered = x - mean
    var_sum = (centered * centered).sum(0)
    invstd = 1 / torch.sqrt(var_sum / batch + eps)
    out = torch.addcmul(bias.to(x.dtype), centered, invstd * weight.to(x.dtype)).to(flat.dtype)
    running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
    running_var.mul_(1 - momentum).add_(var_sum.detach() / (batch - 1) * momentum)
    return out, centered, invstd


_NARROW = 32  # output widths below this use the transposed product (measured at 10, 32, 64 outputs)


class _BatchedLinear(torch.autograd.Function):
    """``h @ w^T + b`` for stacked ``h (K, B, in)``, ``w (K, out, in)``, ``b (K, out)``.

    The forward is ``baddbmm``, as autograd would run it; the backward is written by hand because
    autograd's own, for ``w.transpose(1, 2)``, multiplies ``h^T @ grad`` into an ``(in, out)``
    matrix and then adds its transpose into ``w.grad``: a strided add over every weight, and a
    product that MKL runs slowly when ``out`` is small (the 10-way output layer). Computing
    ``grad^T @ h`` in ``w``'s own ``(out, in)`` layout made the product 2x faster for the output
    layer and a whole 256x256 layer's step about 15 % faster on CPU (one thread, 16 members).
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, narrow: bool) -> torch.Tensor:
        ctx.save_for_backward(h, w)
        if narrow:
            # A narrow layer (the output layer's few classes) as (w @ h^T)^T: its (K, out, B) result
            # is 2.5x faster to compute, and to feed to log_softmax over classes, than (K, B, out).
            return torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2)).transpose(1, 2)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, w = ctx.saved_tensors
        need_h, need_w, need_b, _ = ctx.needs_input_grad
        grad_h = torch.bmm(grad, w) if need_h else None
        grad_w = torch.bmm(grad.transpose(1, 2), h) if need_w else None
        grad_b = grad.sum(1) if need_b else None
        return grad_h, grad_w, grad_b, None


def flops_per_example(net: StackedNet) -> float:
    """Multiply-add FLOPs of one member's forward + backward per example (3 x forward, 2 per MAC)."""
    macs = 0
    for s in net.slots:
        if s.offset < net.weight_size:
            macs += s.numel if net.cls is MLP else 0
    if net.cls is not MLP:
        length = net.kwargs["length"]
        for s in net.slots:
            if s.name.startswith("convs.") and s.name.endswith("weight"):
                length = (length + 2 - s.shape[-1]) // 2 + 1
                macs += s.numel * length
            elif s.name == "out.weight":
                macs += s.numel
    return 6.0 * macs
