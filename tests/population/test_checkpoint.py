"""Population.fit(checkpoint=): a fit interrupted at any moment and resumed equals an uninterrupted fit.

The reference is the same population fitted without interruption in the same process; equality is
bit for bit (every weight and buffer, every history value apart from wall-clock ``time``, statuses,
stop reasons, best epochs and the compute counters).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.errors import UserError
from reglab.population import Population
from reglab.population._checkpoint import CheckpointError, read_checkpoint
from reglab.population._shard import Shard

ROOT = Path(__file__).resolve().parents[2]

# Shared by the tests in this process and the child that is killed: both build the same fit.
SETUP = """
import torch
from reglab.callbacks.early_stopping import EarlyStopping
from reglab.models import MLP
from reglab.population import Population

def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 10, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return centers[y] + 0.8 * torch.randn(n, 10, generator=g), y

TRAIN, VAL = blobs(160, 0), blobs(60, 1)

def make(optimizer, threads, masks="independent", order="shared"):
    fast = 0.3 if optimizer == "adam" else 1.0    # members 0 and 4 jump around and stop early
    slow = 2e-3 if optimizer == "adam" else 2e-2  # members 1 and 3 improve for many epochs
    configs = [
        {"lr": fast, "seed": 0, "dropout": 0.3},
        {"lr": slow, "seed": 1, "l2": 1e-3, "dropout": 0.2},
        {"lr": 1e30, "seed": 2},  # diverges (inf, then NaN) in the first epoch
        {"lr": slow, "seed": 3, "weight_decay": 1e-2, "dropout": 0.5, "noise": 0.2},
        {"lr": fast, "seed": 4, "max_norm": 1.0, "label_smoothing": 0.1, "prox_l1": 1e-3},
    ]
    return Population(MLP(10, 3, hidden=(12, 12), norm="batch"), configs, optimizer=optimizer,
                      momentum=0.9 if optimizer == "sgd" else 0.0, seed=7, threads=threads,
                      dropout_masks=masks, data_order=order)

RULE = EarlyStopping("val_loss", patience=1, restore_best_weights=True)
BATCH = 32
"""


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    # threads=1 populations use torch's intra-op threads: on a loaded 2-core machine OpenMP's spinning
    # threads make them crawl. One thread keeps these tests quick; exactness does not depend on it.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _setup() -> dict:
    scope: dict = {}
    exec(SETUP, scope)  # noqa: S102 - the same source as the killed child
    return scope


S = _setup()
EPOCHS, BATCH = 10, S["BATCH"]


def fit(pop: Population, checkpoint=None, epochs=EPOCHS):
    return pop.fit(S["TRAIN"], S["VAL"], epochs=epochs, batch_size=BATCH, early_stopping=S["RULE"],
                   checkpoint=checkpoint)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (a diverged member's NaN weights included)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)
    )


def assert_same_fit(got: Population, want: Population) -> None:
    assert got.status == want.status
    assert got.member_steps_ == want.member_steps_
    assert got.epoch_member_steps_ == want.epoch_member_steps_
    for k in range(len(want)):
        a, b = got.member(k).state_dict(), want.member(k).state_dict()
        assert a.keys() == b.keys()
        for name in a:
            assert same_bits(a[name], b[name]), (k, name)
        hg, hw = got.histories_[k], want.histories_[k]
        assert hg.equals(hw, ignore=("time",)), k
        assert (hg.stop_reason, hg.best_epoch, hg.monitor) == (hw.stop_reason, hw.best_epoch, hw.monitor)


CRASH_EPOCH = 3


@pytest.mark.parametrize(
    "optimizer,threads,masks,order",
    [
        ("adam", 1, "independent", "shared"),
        ("adam", 2, "common", "per_member"),
        ("sgd", 1, "common", "per_member"),
        ("sgd", 2, "independent", "shared"),
    ],
)
def test_crash_mid_epoch_then_resume_equals_an_uninterrupted_fit(tmp_path, monkeypatch, optimizer, threads,
                                                                   masks, order):
    want = S["make"](optimizer, threads, masks, order)
    fit(want)
    lengths = [len(h) for h in want.histories_]
    # The interruption must find every kind of member: diverged, early-stopped, and still training.
    assert want.status[2] == "diverged" and lengths[2] <= CRASH_EPOCH
    stopped_before = [k for k, n in enumerate(lengths) if want.status[k] == "stopped" and n <= CRASH_EPOCH]
    assert stopped_before, lengths
    assert max(lengths) > CRASH_EPOCH + 1, lengths

    path = tmp_path / "pop.pt"
    real_step, calls = Shard.step, []

    def crashing_step(self, x, y, idx, epoch, *args):
        calls.append(epoch)
        if epoch == CRASH_EPOCH and calls.count(epoch) == 3:  # the third batch of the epoch
            raise RuntimeError("simulated crash")
        return real_step(self, x, y, idx, epoch, *args)

    monkeypatch.setattr(Shard, "step", crashing_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(S["make"](optimizer, threads, masks, order), checkpoint=path)
    monkeypatch.setattr(Shard, "step", real_step)
    state = read_checkpoint(path, None)
    assert state["epoch"] == CRASH_EPOCH  # the last finished epoch's state
    assert [state["status"][k] for k in stopped_before] == ["stopped"] * len(stopped_before)

    got = S["make"](optimizer, threads, masks, order)
    fit(got, checkpoint=path)
    assert_same_fit(got, want)
    assert read_checkpoint(path, None)["epoch"] == max(lengths)  # the file follows the fit to its end


def test_a_finished_checkpoint_only_finishes_and_more_epochs_continue(tmp_path):
    path = tmp_path / "pop.pt"
    first = S["make"]("adam", 1)
    fit(first, checkpoint=path, epochs=4)
    again = S["make"]("adam", 1)
    fit(again, checkpoint=path, epochs=4)  # nothing left to train: the same result
    assert_same_fit(again, first)
    longer = S["make"]("adam", 1)
    fit(longer, checkpoint=path, epochs=EPOCHS)  # a 4-epoch state is a valid start of a longer fit
    want = S["make"]("adam", 1)
    fit(want)
    assert_same_fit(longer, want)


def test_a_checkpoint_past_the_asked_epochs_is_refused_and_kept(tmp_path):
    """It finished silently with the checkpoint's longer histories, as if epochs had been larger."""
    path = tmp_path / "pop.pt"
    fit(S["make"]("adam", 1), checkpoint=path, epochs=4)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"is at epoch 4, past epochs=3; pass epochs>=4") as err:
        fit(S["make"]("adam", 1), checkpoint=path, epochs=3)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_statuses_say_how_each_member_ended_after_a_fit_a_refit_and_a_resume(tmp_path):
    """A member that trained every epoch read "active" after fit returned, as if still training. It
    reads "finished" now; its checkpoint keeps "active" (the file's format is unchanged, so older
    files load), so a resumed fit ends "finished" too and a longer one trains it on."""
    path = tmp_path / "pop.pt"
    pop = S["make"]("adam", 1)
    assert pop.status == ["active"] * 5
    fit(pop, checkpoint=path, epochs=4)
    ended = ["stopped", "finished", "diverged", "stopped", "stopped"]
    assert pop.status == ended and [len(h) for h in pop.histories_] == [2, 4, 1, 2, 3]
    assert read_checkpoint(path, None)["status"] == ["stopped", "active", "diverged", "stopped", "stopped"]
    with pytest.raises(UserError, match="already fitted"):
        fit(pop, epochs=4)
    assert pop.status == ended
    resumed = S["make"]("adam", 1)
    fit(resumed, checkpoint=path, epochs=4)  # nothing left to train
    assert resumed.status == ended
    longer = S["make"]("adam", 1)
    fit(longer, checkpoint=path, epochs=6)  # member 1 trains on from "active"
    assert longer.status == ended and [len(h) for h in longer.histories_] == [2, 6, 1, 2, 3]


def test_a_checkpoint_of_another_fit_or_with_a_payload_is_refused(tmp_path):
    path = tmp_path / "pop.pt"
    fit(S["make"]("adam", 1), checkpoint=path, epochs=1)
    # The first difference is named with both values: a member's field, a setting, or the data.
    message = r"written by a different fit \(configs\[0\].lr is 1.0, the checkpoint has 0.3\); delete it"
    with pytest.raises(CheckpointError, match=message):
        fit(S["make"]("sgd", 1), checkpoint=path)  # other learning rates
    with pytest.raises(CheckpointError, match=r"different fit \(4 configs, the checkpoint has 5\)"):
        Population(S["make"]("adam", 1).arch, S["make"]("adam", 1).configs[:4]).fit(
            S["TRAIN"], S["VAL"], epochs=2, batch_size=BATCH, early_stopping=S["RULE"], checkpoint=path)
    pop = S["make"]("adam", 1)
    with pytest.raises(UserError, match=r"different fit \(batch_size=16, the checkpoint has batch_size=32\)"):
        pop.fit(S["TRAIN"], S["VAL"], epochs=2, batch_size=16, early_stopping=S["RULE"], checkpoint=path)
    other = (S["TRAIN"][0] + 1.0, S["TRAIN"][1])
    with pytest.raises(UserError, match=r"different fit \('train' differs\)"):
        pop.fit(other, S["VAL"], epochs=2, batch_size=BATCH, early_stopping=S["RULE"], checkpoint=path)
    fit(pop, checkpoint=path, epochs=2)  # a refused checkpoint changed nothing: the same population fits

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    bad = tmp_path / "bad.pt"
    torch.save({"kind": "reglab.population", "x": Payload()}, bad)
    with pytest.raises(UserError, match=r"refused checkpoint .*objects other than tensors"):
        fit(S["make"]("adam", 1), checkpoint=bad)
    assert not (tmp_path / "pwned").exists()
    truncated = tmp_path / "half.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=r"truncated or not a torch file"):
        fit(S["make"]("adam", 1), checkpoint=truncated)
    torch.save({"epoch": 3}, tmp_path / "other.pt")
    with pytest.raises(UserError, match=r"is not a population checkpoint"):
        fit(S["make"]("adam", 1), checkpoint=tmp_path / "other.pt")


def test_bad_checkpoint_argument_is_one_line(tmp_path):
    for bad in (3, tmp_path, ""):
        with pytest.raises(InvalidParameterError, match=r"'checkpoint' parameter of Population.fit must be"):
            fit(S["make"]("adam", 1), checkpoint=bad)


KILLED_CHILD = SETUP + """
import sys, time
from reglab.population._shard import Shard

real_step = Shard.step

def slow_step(*args):  # at least 5 ms a step, so that a random moment falls inside training
    time.sleep(0.005)
    return real_step(*args)

Shard.step = slow_step
torch.set_num_threads(1)
pop = make("adam", 2, "common", "per_member")
pop.fit(TRAIN, VAL, epochs=int(sys.argv[2]), batch_size=BATCH, checkpoint=sys.argv[1])
"""


def test_kill_9_at_a_random_moment_then_resume_equals_an_uninterrupted_fit(tmp_path):
    """A real ``kill -9`` of a process mid-fit (possibly inside a checkpoint write), then resume here.

    What is tested is the resume: from the killed process's last checkpoint, this process must finish
    exactly as an uninterrupted fit here. It needs the killed process's epochs to equal this process's,
    which they do except, under heavy load, in about 1 of 12 kills (one shard of the killed child differs
    in the last bits from some epoch on; complete child runs matched in 33 of 33, see the issue notes of
    2026-12-07): such a kill is retried, and a resume that differs still fails the test. Measured
    2026-12-08: 4 of 160 killed children differed while fresh processes and complete runs of the child's
    script, rerun for each, all equalled this process; with MKL_CBWR=AUTO,STRICT (MKL's reproducible
    mode, README "Threads") 0 of 90 did, so the odd child is most likely MKL choosing another code path.
    """
    epochs, rng = 12, random.Random(2024)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(checkpoint):
        pop = S["make"]("adam", 2, "common", "per_member")
        pop.fit(S["TRAIN"], S["VAL"], epochs=epochs, batch_size=BATCH, checkpoint=checkpoint)
        return pop

    want = run(None)
    mismatched = 0
    for attempt in range(8):
        path = tmp_path / f"pop{attempt}.pt"
        child = [sys.executable, "-c", KILLED_CHILD, str(path), str(epochs)]
        proc = subprocess.Popen(child, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
        state = read_checkpoint(path, None)
        saved = state["epoch"]
        if not (proc.returncode == -signal.SIGKILL and 1 <= saved < epochs):
            continue  # not killed mid-training with at least one epoch checkpointed
        # The same epochs trained here and checkpointed at the same boundary: the child's state must be
        # this process's bit for bit (weights and Adam's moments), else the kill says nothing of resuming.
        here_path = tmp_path / f"here{attempt}.pt"
        pop = S["make"]("adam", 2, "common", "per_member")
        pop.fit(S["TRAIN"], S["VAL"], epochs=saved, batch_size=BATCH, checkpoint=here_path, progress="off")
        here = read_checkpoint(here_path, None)["shards"]
        if not all(
            same_bits(c[key], h[key]) if key == "theta" else
            all(same_bits(c["optimizer"]["state"][n], h["optimizer"]["state"][n]) for n in ("m", "v"))
            for c, h in zip(state["shards"], here, strict=True) for key in ("theta", "optimizer")
        ):
            mismatched += 1  # the child's own epochs differ: nothing to say about the resume
            continue
        break
    else:
        pytest.fail(f"no usable kill in 8 attempts ({mismatched} children's epochs differed from this one's)")

    assert_same_fit(run(path), want)
