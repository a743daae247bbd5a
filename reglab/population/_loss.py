"""Per-member cross-entropy and correct counts of stacked logits, as the Trainer computes them."""

from __future__ import annotations

import torch

__all__ = ["cross_entropy", "nll", "correct"]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor | None) -> torch.Tensor:
    """Per-member mean of ``F.cross_entropy(..., label_smoothing=eps_k)``; ``logits`` is ``(K, B, C)``.

    ``smoothing`` is the ``(K, 1)`` column of ``eps_k``; ``None`` when every ``eps_k`` is 0.

    Example:
        >>> logits, y = torch.zeros(2, 3, 4), torch.tensor([0, 1, 2])
        >>> cross_entropy(logits, y, torch.zeros(2, 1))
        tensor([1.3863, 1.3863])
    """
    # Over the class axis of a (K, C, B) view: on CPU, torch's log_softmax (forward and backward)
    # over a last axis of 10 classes is 5-15x slower than over a middle one. The output layer
    # already computes its logits in that layout (see _BatchedLinear), so the transpose is free.
    logp = torch.log_softmax(logits.transpose(1, 2), dim=1)
    target = (y.expand(logits.shape[:2]) if y.ndim == 1 else y).unsqueeze(1)
    if smoothing is not None and not bool((smoothing != 0).any()):
        smoothing = None
    return nll(logp, target, smoothing)


def nll(logp: torch.Tensor, target: torch.Tensor, smoothing: torch.Tensor | None) -> torch.Tensor:
    """Per-member mean cross-entropy from ``(K, C, B)`` log-probabilities and ``(K, 1, B)`` targets.

    Example:
        >>> logp = torch.log_softmax(torch.zeros(1, 4, 2), dim=1)
        >>> nll(logp, torch.tensor([[[0, 3]]]), None)
        tensor([1.3863])
    """
    loss = -logp.gather(1, target).squeeze(1).mean(-1)
    if smoothing is None:
        return loss
    smooth = -logp.mean(1).mean(-1)  # torch: eps * (-sum_c log p_c) / C
    return (1 - smoothing[:, 0]) * loss + smoothing[:, 0] * smooth


def correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member count of correct predictions, ``(K,)``, from ``(K, B, C)`` logits.

    Example:
        >>> correct(torch.tensor([[[0.0, 1.0], [2.0, 0.0]]]), torch.tensor([1, 1]))
        tensor([1])
    """
    # argmax over a strided last axis is 5x slower than copying first (CPU); torch's argmax also
    # settles ties as the Trainer's does (first maximum), which max(dim) does not promise.
    return (logits.contiguous().argmax(-1) == y).sum(-1)
