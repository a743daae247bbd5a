"""The study's plain progress lines."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from reglab.study.execute import TrialSpec
from reglab.study.progress import PlainProgress


def _line(params, metrics, phase="cv", fold=0):
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.add(0, 1)
    spec = TrialSpec(phase, "l2", params, 0, fold, 5, None)
    progress.advance(SimpleNamespace(spec=spec, metrics=metrics, status="done", duration=1.25))
    return stream.getvalue().strip().split("] ", 1)[1]


def test_a_line_names_the_candidates_parameters_and_its_score():
    """Two points of one recipe's grid printed the same line; a regression trial showed no score."""
    line = _line({"l2": 0.001}, {"val_accuracy": 0.75})
    assert line == "cv l2 l2=0.001 done acc=0.7500 seed=0 fold=0 (1.2s)"
    assert _line({"l2": 0.01}, {"val_accuracy": 0.75}).startswith("cv l2 l2=0.01 done")
    assert _line({"l2": 0.01}, {"val_mse": 0.123456}) == "cv l2 l2=0.01 done mse=0.1235 seed=0 fold=0 (1.2s)"
    final = _line({}, {"test_accuracy": 0.5}, phase="final", fold=-1)
    assert final == "final l2 done acc=0.5000 seed=0 (1.2s)"
    es = {"early_stopping": {"monitor": "val_loss", "patience": 2}}
    assert '{"monitor":"val_loss","patience":2}' in _line(es, {})


def _study_lines(config, out, monkeypatch):
    """The study's progress lines as ``(trials finished, total, text)``, and its progress object."""
    import reglab.study.runner as study_runner
    from reglab.study import Study

    stream = io.StringIO()
    progress = PlainProgress(stream)
    monkeypatch.setattr(study_runner, "make_progress", lambda _progress: progress)
    Study(config).run(out=out)
    lines = []
    for line in stream.getvalue().splitlines():
        count, text = line.split("] ", 1)
        done, total = count.lstrip("[").split(" ")[0].split("/")
        lines.append((int(done), int(total), text))
    return lines, progress


@pytest.mark.parametrize(
    "change,total",
    [
        # cv: (none 1 + l2 2 candidates) x 2 seeds x 2 folds = 12; final: 2 recipes x 2 seeds = 4.
        ({}, 16),
        # TPE proposes 3 l2 candidates one at a time: cv (1 + 3) x 4 = 16, final 4.
        ({"search": {"method": "tpe", "trials": 3}, "recipes": {"none": {}, "l2": {"l2": {
            "loguniform": [1e-4, 1e-1]}}}}, 20),
        # Halving: rung0 trains l2's 4 candidates on one seed and fold, 2 go on; cv (1 + 2 + 1) x 4 = 16;
        # final 3 x 2 = 6, of which absurd_lr's 2 are not run (every trial of it diverges): 4 + 16 + 6.
        ({"budget": {"halving": True, "eta": 2, "rungs": 2}, "recipes": {
            "none": {}, "l2": {"l2": {"grid": [1e-4, 1e-3, 1e-2, 1e-1]}}, "absurd_lr": {"lr": 1e8}}}, 26),
    ],
)
def test_the_study_total_is_known_from_the_first_line(tiny, tmp_path, monkeypatch, change, total):
    """The total jumped when the final phase was planned ([12/12] then [13/16]); it is the whole
    study's from the start, and the last line reaches it."""
    lines, progress = _study_lines({**tiny, **change}, tmp_path, monkeypatch)
    assert {t for _, t, _ in lines} == {total}
    skipped = [text for _, _, text in lines if "not run" in text]
    if "absurd_lr" in change.get("recipes", {}):
        assert skipped == ["2 trial(s) not run: final absurd_lr: no candidate of it finished its cv trials"]
    else:
        assert skipped == []
    steps = [2 if "not run" in text else 1 for _, _, text in lines]
    assert [done for done, _, _ in lines] == [sum(steps[: i + 1]) for i in range(len(steps))]
    assert lines[-1][0] == progress.finished == progress.total == total


def test_a_resumed_study_keeps_its_total(tiny, tmp_path, monkeypatch):
    _study_lines(tiny, tmp_path, monkeypatch)
    lines, progress = _study_lines(tiny, tmp_path, monkeypatch)  # everything stored: nothing runs
    assert lines == []
    assert (progress.total, progress.finished, progress.resumed) == (16, 16, 16)


def test_a_failed_or_diverged_trial_says_why():
    """A failed trial's line said only "failed": its error was in the database, nowhere on screen."""
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.add(0, 2)
    spec = TrialSpec("cv", "l2", {"l2": 0.1}, 1, 0, 5, None)
    error = "RuntimeError: mat1 and mat2 shapes cannot be multiplied\nTraceback (most recent call last): ..."
    progress.advance(SimpleNamespace(spec=spec, metrics={}, status="failed", duration=0.5, error=error))
    progress.advance(SimpleNamespace(spec=spec, metrics={}, status="done", duration=0.5, error=None))
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["cv l2 l2=0.1 failed seed=1 fold=0 (500ms): RuntimeError: mat1 and mat2 shapes cannot "
                     "be multiplied", "cv l2 l2=0.1 done seed=1 fold=0 (500ms)"]


def test_the_rich_bar_keeps_a_failed_trials_line_above_it():
    """The bar's description is the last trial's line: a failure vanished with the next trial."""
    from reglab._rich import Console
    from reglab.study.progress import RichProgress

    progress = RichProgress()
    progress.bar.stop()
    stream = io.StringIO()
    progress.bar.live.console = Console(file=stream, width=200, force_terminal=False)
    progress.add(0, 2)
    spec = TrialSpec("cv", "l2", {"l2": 0.1}, 1, 0, 5, None)
    progress.advance(SimpleNamespace(spec=spec, metrics={}, status="diverged", duration=0.5,
                                     error="train loss is nan at epoch 2, batch 3"))
    progress.advance(SimpleNamespace(spec=spec, metrics={}, status="done", duration=0.5, error=None))
    assert stream.getvalue().splitlines() == [
        "cv l2 l2=0.1 diverged seed=1 fold=0 (500ms): train loss is nan at epoch 2, batch 3"]
