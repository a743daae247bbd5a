"""Per-member dropout masks for a stacked shard: 16-bit uniform draws thresholded at each member's rate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from reglab.population._torchscript import Kernel

__all__ = ["Dropout", "fill_mask"]

def fill_mask(
    draws: list[torch.Tensor],
    generators: list[torch.Generator],
    u: torch.Tensor,
    below: torch.Tensor,
    scale: torch.Tensor,
    out: torch.Tensor,
) -> torch.Tensor:
    """Draw ``draws[i]`` from ``generators[i]``, then write the int16 view ``u``'s scaled mask to ``out``.

    ``u`` views the draws' bits as int16 numbers ``u - 32768`` and broadcasts against ``out``; a unit
    is kept (value ``scale``) where ``u - below >= 1``, dropped (0) where ``u - below <= 0``.
    TorchScript-compatible (a step kernel calls it).
    """
    for i in range(len(draws)):
        # The full 64-bit range (from -(2**63), written so that TorchScript reads an int): 4 uniform int16.
        draws[i].random_(-9223372036854775807 - 1, None, generator=generators[i])
    # (u - below) clamped to [0, 1] is exactly the 0/1 mask (integers in floating point): these
    # arithmetic passes run about 3x faster on CPU than a comparison, whose bool result converts
    # slowly (16 x 100 x 256 units, one thread: 0.21 ms against 0.63 ms for torch.ge, then
    # multiplying by the bool mask). Converting u into ``out`` first, rather than letting torch.sub
    # convert it into a temporary, took 0.50-0.53 ms against 0.56-0.70 ms with cold caches.
    out.copy_(u)
    return out.sub_(below).clamp_(0, 1).mul_(scale)


_fill_mask = Kernel(fill_mask)


class Dropout:
    """Dropout masks for the members of one shard, scaled by ``1 / (1 - q_k)``.

    Each unit gets a 16-bit uniform integer ``u`` in ``[0, 65536)``, and member k keeps the units
    with ``u >= round(65536 * p_k)``: a Bernoulli(1 - q_k) mask with ``q_k``, ``p_k`` rounded to the
    nearest multiple of 1/65536 (within 7.7e-6; float uniforms resolve 2^-24, torch's dropout the
    same); kept units are scaled by ``1 / (1 - q_k)``, so every mask has mean 1 exactly.
    Four units share one 64-bit draw of the generator, which makes the masks about 3x cheaper than
    a float uniform per unit; at the sizes of small networks drawing the masks is otherwise the
    largest cost after the matrix products. A member with ``p_k = 0`` draws nothing.

    ``common=True`` (common random numbers) draws one ``u`` per layer and step from
    ``common_generator`` (seeded identically in every shard), shared by all members; member k keeps
    the units with ``u >= 65536 p_k``. Each member's mask keeps its own Bernoulli(1 - p_k) law, but
    members see *correlated* masks (a unit dropped at rate 0.1 is also dropped at 0.2), so
    differences between members carry less dropout noise. ``common=False`` draws member k's ``u``
    from its own generator ``generators[k]``, as K separate runs do.

    Example:
        >>> gens = [torch.Generator().manual_seed(k) for k in range(2)]
        >>> drop = Dropout(torch.tensor([[0.0], [0.5]]), common=False, generators=gens)
        >>> mask = drop(torch.Size([2, 1000, 4]))
        >>> mask[0].unique().tolist(), mask[1].unique().tolist()
        ([1.0], [0.0, 2.0])
        >>> round(float((mask[1] == 0).float().mean()), 1)
        0.5
    """

    def __init__(
        self,
        p: torch.Tensor,
        *,
        common: bool,
        generators: Sequence[torch.Generator] = (),
        common_generator: torch.Generator | None = None,
    ):
        self.common, self.common_generator = common, common_generator
        self.set_rates(p, list(generators))

    def set_rates(self, p: torch.Tensor, generators: list[torch.Generator]) -> None:
        self.p = p.reshape(-1, 1, 1)
        # A unit is kept with probability 1 - q, q = round(65536 p) / 65536, so kept units are scaled
        # by 1 / (1 - q): the mask's mean is exactly 1 (1 / (1 - p) would bias it at high rates).
        rounded = torch.round(self.p.double() * 65536) / 65536
        self.scale = (1.0 / (1.0 - rounded)).to(self.p.dtype)
        self.active = bool((self.p > 0).any())
        # Keep when u - 32768 (the draw's bits read as signed 16-bit numbers) >= round(65536 p) - 32768.
        self.below = (torch.round(self.p.double() * 65536) - 32769).to(self.p.dtype)
        # Rows whose p_k is 0 keep every unit whatever their u (u - below >= 1 for any int16 u), so
        # they draw nothing: their generator is not advanced and their bits are left as they are.
        if self.common:
            self._rows, self.generators = [0], [self.common_generator]
        else:
            self._rows = [row for row, rate in enumerate(self.p.flatten().tolist()) if rate > 0]
            self.generators = [generators[row] for row in self._rows]
        self._plans: dict[tuple[int, ...], tuple[list[torch.Tensor], torch.Tensor]] = {}

    def plan(self, shape: Sequence[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """For activations of ``shape``: the int64 rows to draw (one per entry of ``generators``) and
        the int16 view of their bits that broadcasts against ``shape``, as :func:`fill_mask` takes them.

        One buffer per shape, reused from step to step (no per-step allocation).
        """
        key = tuple(shape)
        plan = self._plans.get(key)
        if plan is None:
            rows = 1 if self.common else key[0]
            units = math.prod(key[1:])
            bits = torch.empty(rows, -(-units // 4), dtype=torch.int64, device=self.p.device)
            u = bits.view(torch.int16)[:, :units].unflatten(1, key[1:])
            plan = self._plans[key] = ([bits[row] for row in self._rows], u)
        return plan

    def __call__(self, shape: torch.Size, *, out: torch.Tensor | None = None) -> torch.Tensor | None:
        """The scaled mask for activations of ``shape`` (``None`` if no member drops), in ``out`` if given."""
        if not self.active:
            return None
        if out is None:
            out = torch.empty(shape, dtype=self.p.dtype, device=self.p.device)
        draws, u = self.plan(shape)
        return _fill_mask(draws, self.generators, u, self.below, self.scale, out)
