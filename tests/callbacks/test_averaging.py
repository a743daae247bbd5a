"""EMA and SWA against hand-computed averages of the recorded weight trajectory."""

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.callbacks import EMA, SWA, Callback
from reglab.train import Trainer

D = torch.float64


class Trajectory(Callback):
    def __init__(self, when):
        self.when, self.steps, self.epochs = when, [], []

    def on_batch_end(self, trainer, batch, logs):
        self.steps.append(trainer.model[0].weight.detach().clone())

    def on_epoch_end(self, trainer, epoch, logs):
        self.epochs.append(trainer.model[0].weight.detach().clone())


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, generator=g, dtype=D)
    return x, (x[:, 0] > 0).long()


def _model(norm=False):
    torch.manual_seed(0)
    layers = [nn.Linear(3, 4)] + ([nn.BatchNorm1d(4)] if norm else []) + [nn.ReLU(), nn.Linear(4, 2)]
    return nn.Sequential(*layers).double()


def test_ema_equals_hand_recursion():
    model = _model()
    traj = Trajectory("batch")
    Trainer(model, epochs=3, batch_size=10, lr=0.1, callbacks=[traj, EMA(0.8)], progress="off").fit(_data())
    avg = traj.steps[0]  # torch: the first update copies the weights, then avg = d*avg + (1-d)*w
    for w in traj.steps[1:]:
        avg = 0.8 * avg + 0.2 * w
    torch.testing.assert_close(model[0].weight.detach(), avg, rtol=0, atol=1e-14)


def test_ema_averages_batchnorm_float_buffers_and_copies_its_step_count():
    model = _model(norm=True)
    seen = []

    class Buffers(Callback):
        def on_batch_end(self, trainer, batch, logs):
            seen.append({k: v.clone() for k, v in trainer.model[1].state_dict().items()})

    x, y = _data()
    callbacks = [Buffers(), EMA(0.99)]
    Trainer(model, epochs=5, batch_size=10, lr=0.1, callbacks=callbacks, progress="off").fit((x, y))
    avg = dict(seen[0])  # timm ModelEmaV3's rule after the first copy: lerp float entries, copy integer ones
    for s in seen[1:]:
        avg = {k: 0.99 * avg[k] + 0.01 * s[k] if v.is_floating_point() else s[k] for k, v in avg.items()}
    torch.testing.assert_close(model[1].running_var, avg["running_var"], rtol=0, atol=1e-14)
    # 15 steps: torch's EMA averaged the counter in integers, int(0.99 * 1 + 0.01 * 2) = 1 forever.
    assert int(model[1].num_batches_tracked) == len(seen) == 15


def test_swa_equals_mean_of_epoch_end_weights_and_recomputes_batchnorm():
    model = _model(norm=True)
    traj = Trajectory("epoch")
    x, y = _data()
    Trainer(model, epochs=5, batch_size=30, lr=0.1, callbacks=[traj, SWA(start_epoch=2)], progress="off").fit(
        (x, y)
    )
    mean = torch.stack(traj.epochs[2:]).mean(0)
    # Exact to rounding in float64: torch's get_swa_multi_avg_fn computed 1/(n+1) in float32 (off by 1e-8
    # relative to the weights' spread), AveragedModel's CPU default does not.
    torch.testing.assert_close(model[0].weight.detach(), mean, rtol=0, atol=1e-15)
    with torch.no_grad():  # update_bn: running mean = mean of the averaged layer's outputs on the train data
        h = model[0](x)
    torch.testing.assert_close(model[1].running_mean, h.mean(0), rtol=0, atol=1e-12)


def test_swa_lr_anneals_to_target():
    trainer = Trainer(
        _model(),
        epochs=6,
        batch_size=30,
        lr=0.1,
        progress="off",
        callbacks=[SWA(start_epoch=2, lr=0.01, anneal_epochs=2)],
    )
    h = trainer.fit(_data())
    assert h["lr"][:3] == pytest.approx([0.1, 0.1, 0.1]) and h["lr"][-1] == pytest.approx(0.01)


def test_averaging_argument_errors():
    with pytest.raises(
        InvalidParameterError, match=r"'decay' parameter of EMA must be a float in the range \[0, 1\)"
    ):
        EMA(1.0)
    with pytest.raises(InvalidParameterError, match=r"'start_epoch' parameter of SWA"):
        SWA(start_epoch=-1)


def test_swa_starting_after_the_last_epoch_warns_and_leaves_the_weights():
    """SWA(start_epoch=10) in a 3-epoch fit averaged nothing without a word."""
    import warnings

    from reglab.models import MLP

    x, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    torch.manual_seed(0)
    plain = MLP(4, 2, hidden=(5,))
    torch.manual_seed(0)
    late = MLP(4, 2, hidden=(5,))
    Trainer(plain, epochs=3, progress="off").fit((x, y))
    late_start = r"SWA\(start_epoch=10\) with epochs=3: no epoch reaches start_epoch"
    with pytest.warns(UserWarning, match=late_start):
        Trainer(late, epochs=3, callbacks=[SWA(start_epoch=10)], progress="off").fit((x, y))
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), late.state_dict().values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one that averages says nothing
        Trainer(MLP(4, 2, hidden=(5,)), epochs=3, callbacks=[SWA(start_epoch=2)], progress="off").fit((x, y))
