"""The study's plain progress lines."""

from __future__ import annotations

import io
from types import SimpleNamespace

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
