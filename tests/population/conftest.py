"""A plain-torch, one-member-at-a-time reference trainer (float64) that the population must match."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reglab.constraints import MaxNorm


def make_data(n: int, features: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs: learnable but not separable, so accuracy and losses keep moving."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + 1.5 * torch.randn(n, features, generator=g)
    return x.double(), y


def reference_fit(
    build,
    cfg,
    x,
    y,
    *,
    epochs,
    batch_size,
    optimizer="adam",
    seed=0,
    momentum=0.0,
    early_stopping=None,
    val=None,
    noise_draws=None,
):
    """Train one member alone: the Trainer's data order (generator seeded by ``seed``, randperm per
    epoch, last partial batch kept), Keras L1/L2 in the loss, torch's optimizers with decay on the
    weights only, the proximal step, then reglab.constraints.MaxNorm."""
    torch.manual_seed(cfg.get("seed", 0))
    model = build(cfg.get("dropout", 0.0)).to(x.dtype)
    weights = [
        p for n, p in model.named_parameters() if p.ndim >= 2 and ".norm" not in n and "norms." not in n
    ]
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    lr, wd, dec = cfg.get("lr", 1e-3), cfg.get("weight_decay", 0.0), cfg.get("decoupled_decay", 0.0)
    if optimizer == "adam":
        cls = torch.optim.AdamW if dec else torch.optim.Adam
        opt = cls(
            [{"params": weights, "weight_decay": dec or wd}, {"params": others, "weight_decay": 0.0}], lr=lr
        )
    else:
        opt = torch.optim.SGD(
            [{"params": weights, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}],
            lr=lr,
            momentum=momentum,
        )
    l1, l2 = cfg.get("l1", 0.0), cfg.get("l2", 0.0)
    pl1, pl2 = cfg.get("prox_l1", 0.0), cfg.get("prox_l2", 0.0)
    constraint = MaxNorm(cfg["max_norm"]) if cfg.get("max_norm") else None
    g = torch.Generator().manual_seed(seed)
    n, stopped, best = len(x), False, None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            b = perm[s : s + batch_size]
            xb = x[b]
            if noise_draws is not None:
                xb = xb + cfg["noise"] * next(noise_draws)
            loss = F.cross_entropy(model(xb), y[b], label_smoothing=cfg.get("label_smoothing", 0.0))
            loss = loss + sum(l1 * w.abs().sum() + l2 * w.pow(2).sum() for w in weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                if pl1 or pl2:
                    for w in weights:
                        w.copy_(torch.sign(w) * (w.abs() - lr * pl1).clamp(min=0) / (1 + 2 * lr * pl2))
                if constraint is not None:
                    constraint(model)
        if early_stopping is not None:
            model.eval()
            with torch.no_grad():
                val_loss = F.cross_entropy(model(val[0]), val[1]).item()
            stopped = early_stopping.update(val_loss, epoch)
            if early_stopping.best_epoch == epoch and not stopped:
                best = {k: v.clone() for k, v in model.state_dict().items()}
            if stopped:
                break
    if early_stopping is not None and best is not None:
        model.load_state_dict(best)
    return model.eval(), epoch + 1


def max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


@pytest.fixture
def blobs():
    return make_data(200, 10, 3, seed=0)
