"""ModelCheckpoint: atomic weights_only files; 10 epochs straight == 5 + resume 5 (bit-identical on CPU)."""

import os

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.callbacks import EMA, Callback, EarlyStopping, ModelCheckpoint, save_atomic
from reglab.errors import UserError
from reglab.init import reinitialize
from reglab.models import MLP
from reglab.train import Trainer

D = torch.float64


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=D)
    return x, (x[:, 0] - x[:, 2] > 0).long()


def _noise(x, y, *, generator):
    return x + 0.1 * torch.randn(x.shape, generator=generator, dtype=x.dtype), y


def _trainer(epochs, tmp, **kw):
    torch.manual_seed(0)
    model = MLP(6, 2, hidden=(12, 12), residual=True, dropout=0.2).double()
    callbacks = [EarlyStopping(patience=100, restore_best_weights=True), EMA(0.9), ModelCheckpoint(tmp)]
    return Trainer(
        model,
        epochs=epochs,
        batch_size=7,
        lr=0.02,
        seed=11,
        augment=_noise,
        callbacks=callbacks,
        progress="off",
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7),
        **kw,
    )


def test_resume_equals_straight_run(tmp_path):
    train, val = _data(40, 0), _data(20, 1)
    straight = _trainer(10, tmp_path / "a")
    h_straight = straight.fit(train, val)
    first = _trainer(5, tmp_path / "b")
    first.fit(train, val)
    resumed = _trainer(10, tmp_path / "c")
    h_resumed = resumed.fit(train, val, resume_from=tmp_path / "b" / "last.pt")
    assert len(h_resumed) == 10 and h_resumed.equals(h_straight)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert h_resumed.best_epoch == h_straight.best_epoch


def test_a_checkpoint_with_more_epochs_than_asked_is_refused_before_loading(tmp_path):
    """It returned the checkpoint's 5-epoch history from a fit asked for 3 epochs, without a word."""
    train, val = _data(40, 0), _data(20, 1)
    _trainer(5, tmp_path / "b").fit(train, val)
    short = _trainer(3, tmp_path / "c")
    before = {k: v.clone() for k, v in short.model.state_dict().items()}
    with pytest.raises(UserError, match=r"holds 5 epochs, past epochs=3; pass epochs>=5") as err:
        short.fit(train, val, resume_from=tmp_path / "b" / "last.pt")
    assert "\n" not in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in short.model.state_dict().items())
    assert len(_trainer(5, tmp_path / "d").fit(train, val, resume_from=tmp_path / "b" / "last.pt")) == 5


def test_files_load_with_weights_only_and_hold_the_run(tmp_path):
    trainer = _trainer(3, tmp_path)
    h = trainer.fit(_data(30, 0), _data(10, 1))
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]["rows"]) == 3
    assert [c["class"] for c in state["callbacks"]] == ["EarlyStopping", "EMA", "ModelCheckpoint"]
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == h.best("val_loss")["epoch"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_atomic_write_keeps_old_file_when_saving_fails(tmp_path):
    path = save_atomic({"a": torch.ones(1)}, tmp_path / "x.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_atomic({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["a"].tolist() == [1.0]
    assert os.listdir(tmp_path) == ["x.pt"]


def test_resume_errors(tmp_path):
    with pytest.raises(UserError, match="no checkpoint file"):
        _trainer(2, tmp_path).fit(_data(10, 0), _data(5, 1), resume_from=tmp_path / "missing.pt")
    with pytest.raises(InvalidParameterError, match=r"'monitor' parameter of ModelCheckpoint .*Did you mean"):
        Trainer(
            MLP(6, 2).double(),
            epochs=1,
            progress="off",
            callbacks=[ModelCheckpoint(tmp_path, monitor="val_los", mode="min")],
        ).fit(_data(10, 0), _data(5, 1))


def test_a_folder_that_cannot_hold_checkpoints_is_refused_before_training(tmp_path):
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    afile = tmp_path / "afile"
    afile.write_text("")
    for folder, message in (
        (afile, r"ModelCheckpoint: '.*afile' is a file; give a folder for checkpoints"),
        (afile / "sub", r"ModelCheckpoint: the folder '.*afile/sub' cannot be created \(Not a directory\)"),
    ):
        model = MLP(3, 2, hidden=())
        before = [p.clone() for p in model.parameters()]
        checkpoint = ModelCheckpoint(folder, monitor="train_loss")
        trainer = Trainer(model, epochs=2, progress="off", callbacks=[checkpoint])
        with pytest.raises(UserError, match=message):
            trainer.fit((x, y))
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained
    Trainer(MLP(3, 2, hidden=()), epochs=1, progress="off",
            callbacks=[ModelCheckpoint(tmp_path / "new" / "deep", monitor="train_loss")]).fit((x, y))
    assert (tmp_path / "new" / "deep" / "last.pt").is_file()


def test_resuming_with_another_model_optimizer_or_scheduler_is_one_clear_error(tmp_path):
    x, y = torch.randn(20, 5), torch.randint(0, 2, (20,))

    def step_lr(opt):
        return torch.optim.lr_scheduler.StepLR(opt, 1)

    def run(model, resume=None, **kwargs):
        checkpoint = ModelCheckpoint(tmp_path / ("a" if resume is None else "b"), monitor="train_loss")
        trainer = Trainer(model, epochs=2, progress="off", callbacks=[checkpoint], **kwargs)
        return trainer.fit((x, y), resume_from=resume)

    run(MLP(5, 2, hidden=(4,)), scheduler=step_lr)
    last = tmp_path / "a" / "last.pt"
    for model, kwargs, message in (
        (MLP(5, 2, hidden=(6,)), {"scheduler": step_lr}, r"holds another model's weights \(Error"),
        (MLP(5, 2, hidden=(4,)), {"optimizer": "sgd", "scheduler": step_lr}, r"written by another optimizer"),
        (MLP(5, 2, hidden=(4,)), {}, r"has a learning-rate scheduler state and this trainer has none"),
    ):
        with pytest.raises(UserError, match=message) as info:
            run(model, last, **kwargs)
        assert "\n" not in str(info.value)
    assert len(run(MLP(5, 2, hidden=(4,)), last, scheduler=step_lr)) == 2  # the same setup resumes


def test_an_empty_folder_name_or_a_folder_where_a_checkpoint_goes_is_refused(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'dir' parameter of ModelCheckpoint must be a folder"):
        ModelCheckpoint("")
    (tmp_path / "last.pt").mkdir()
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    trainer = Trainer(MLP(3, 2, hidden=()), epochs=1, progress="off",
                      callbacks=[ModelCheckpoint(tmp_path, monitor="train_loss")])
    with pytest.raises(UserError, match=r"last\.pt' is a folder; a checkpoint is written there"):
        trainer.fit((x, y))


def test_resuming_with_other_training_settings_is_refused_naming_them(tmp_path):
    """A resumed run took the checkpoint's optimizer state, so a new lr (or decay) was dropped without a
    word, and another batch size or penalty changed the run it claims to continue exactly."""
    from reglab.penalties import L2

    x, y = torch.randn(40, 5, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    model = MLP(5, 2, hidden=(4,))

    def run(resume=None, **kwargs):
        settings = {"lr": 0.01, "penalty": L2(1e-3), **kwargs}
        checkpoint = ModelCheckpoint(tmp_path / ("a" if resume is None else "b"), monitor="train_loss")
        trainer = Trainer(model, epochs=3, progress="off", callbacks=[checkpoint], **settings)
        return trainer.fit((x, y), resume_from=resume)

    run()
    last = tmp_path / "a" / "last.pt"
    for kwargs, message in (
        ({"lr": 0.5}, r"was written with lr=0\.01; this trainer has lr=0\.5\. A resumed run continues"),
        ({"batch_size": 8, "penalty": L2(1e-2)},
         r"with batch_size=32, penalty='L2\(0\.001\)'; this trainer has batch_size=8, penalty='L2\(0\.01\)'"),
        ({"weight_decay": 1e-4}, r"with weight_decay=0\.0; this trainer has weight_decay=0\.0001"),
    ):
        with pytest.raises(UserError, match=message):
            run(last, **kwargs)
    assert len(run(last)) == 3  # the same settings resume (more epochs may follow: epochs is not compared)


class _Epochs(Callback):  # a plain Callback counting the epochs this process trains
    def __init__(self):
        self.started = 0

    def on_epoch_start(self, trainer, epoch):
        self.started += 1


def test_resuming_a_run_that_stopped_early_ends_it_as_the_straight_run_ended(tmp_path):
    """It trained on past the stop (here 2 epochs became 30), with another History and weights."""
    train, val = _data(40, 0), _data(20, 1)

    def trainer(folder):
        torch.manual_seed(0)
        model = MLP(6, 2, hidden=(12,), dropout=0.2).double()
        stop = EarlyStopping("val_loss", patience=1, min_delta=10.0, restore_best_weights=True)
        return Trainer(model, epochs=30, lr=0.02, seed=3, progress="off",
                       callbacks=[stop, _Epochs(), ModelCheckpoint(folder)])

    straight = trainer(tmp_path / "a")
    h_straight = straight.fit(train, val, test=val)
    assert len(h_straight) == 2 and h_straight.stop_reason.startswith("EarlyStopping")
    resumed = trainer(tmp_path / "b")  # as after a kill between last.pt's write and the end of fit
    h_resumed = resumed.fit(train, val, test=val, resume_from=tmp_path / "a" / "last.pt")
    assert resumed.callbacks[1].started == 0
    assert h_resumed.equals(h_straight) and h_resumed.stop_reason == h_straight.stop_reason
    assert h_resumed.test == h_straight.test
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k  # the best epoch's weights, restored by EarlyStopping


def test_best_pt_of_a_fit_with_restarts_is_the_best_epoch_of_all_restarts(tmp_path):
    # Each restart reset the checkpoint's best: best.pt held the last restart's best epoch even when an
    # earlier restart scored better and was the model fit returned.
    train, val = _data(40, 0), _data(40, 1)
    torch.manual_seed(0)
    model = MLP(6, 2, hidden=(8,)).double()
    trainer = Trainer(model, epochs=3, restarts=3, lr=0.01, seed=0, progress="off",
                      callbacks=[ModelCheckpoint(tmp_path, monitor="val_loss")])
    history = trainer.fit(train, val)
    runs = {}
    for r in range(3):  # each restart alone, as the trainer runs it (seed r, reinitialized for r > 0)
        torch.manual_seed(0)
        alone = MLP(6, 2, hidden=(8,)).double()
        if r:
            reinitialize(alone, r)
        runs[r] = Trainer(alone, epochs=3, lr=0.01, seed=r, progress="off").fit(train, val)
    best = min(((h.best("val_loss")["val_loss"], r) for r, h in runs.items()))
    chosen = next(r["restart"] for r in history.restarts if r["chosen"])
    assert best[1] != 2 and chosen == best[1]  # the case that failed: the last restart is not the best
    state = torch.load(tmp_path / "best.pt", weights_only=True)
    assert state["seed"] == best[1] and state["history"]["rows"][state["epoch"]]["val_loss"] == best[0]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["seed"] == 2
