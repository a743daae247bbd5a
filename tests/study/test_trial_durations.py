"""Trial durations: a population group's wall time split over its members, shown readably in progress.

Population trials read "(0.0s)" in the progress lines: the per-member share of a fast group, and every
hold-out final trial (which only evaluates its cv run's model), were printed to a tenth of a second,
and a failed group stored 0.0 s however long it had trained.
"""

from __future__ import annotations

import io
import re
import time

import pytest

from reglab.study import Study
from reglab.study import runner as study_runner
from reglab.study.execute import TrialSpec, run_group
from reglab.study.export import open_storage
from reglab.study.progress import PlainProgress
from reglab.study.schema import parse_config

SHARE = re.compile(r"\((\S+) = (\S+) / (\d+) trained together\)$")


def _seconds(text: str) -> tuple[float, float]:
    """A shown duration ('12ms', '1.2s', '75s') in seconds, and the step it is rounded to."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000, 0.001
    value = float(text[:-1])
    return value, 0.1 if value < 10 else 1.0


def _run(config, out, monkeypatch) -> list[str]:
    stream = io.StringIO()
    monkeypatch.setattr(study_runner, "make_progress", lambda _progress: PlainProgress(stream))
    Study(config).run(out=out)
    return stream.getvalue().splitlines()


def test_population_members_share_their_groups_wall_time(tiny, tmp_path, monkeypatch):
    tiny["training"]["epochs"] = 3  # a group trains for tens of milliseconds, not microseconds
    lines = _run(tiny, tmp_path, monkeypatch)
    # cv: each fold trains its 3 candidates x 2 seeds as one population of 6; final: 2 recipes x 2 seeds.
    members = {"cv": 6, "final": 4}
    for line in lines:
        match = SHARE.search(line)
        assert match, line
        (share, step), (total, total_step), group = _seconds(match[1]), _seconds(match[2]), int(match[3])
        assert group == members[line.split("] ")[1].split()[0]]
        assert total > 0 and abs(share * group - total) <= group * step + total_step  # both rounded
    store = open_storage(tmp_path)
    trials = store.trials()
    store.close()
    for (phase, fold), group in {("cv", 0): 6, ("cv", 1): 6, ("final", -1): 4}.items():
        durations = {t["duration"] for t in trials if (t["phase"], t["fold"]) == (phase, fold)}
        assert len(durations) == 1  # one group, split evenly
        (duration,) = durations
        wall = max(t["finished"] for t in trials if (t["phase"], t["fold"]) == (phase, fold)) - min(
            t["started"] for t in trials if (t["phase"], t["fold"]) == (phase, fold))
        assert 0 < duration * group <= wall  # the group ran inside its claim-to-commit window


@pytest.mark.parametrize("population", [True, False])
def test_hold_out_final_trials_say_they_only_evaluated(tiny, tmp_path, monkeypatch, population):
    """A hold-out final trial reuses its cv run's model: its few milliseconds are the test evaluation."""
    tiny["validation"] = {"kind": "holdout"}
    tiny["population"] = population
    lines = _run(tiny, tmp_path, monkeypatch)
    finals = [line for line in lines if "] final " in line]
    cvs = [line for line in lines if "] cv " in line]
    assert len(finals) == 4 and len(cvs) == 6
    shown = re.compile(r"\((<1|\d+)ms, evaluated only; model trained earlier\)$")
    assert all(shown.search(line) for line in finals), finals
    assert not any("evaluated only" in line for line in cvs)


def test_a_failed_group_stores_the_time_it_trained(tiny, monkeypatch):
    from reglab.population import Population

    def fail_late(self, *args, **kwargs):
        time.sleep(0.2)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Population, "fit", fail_late)
    config = parse_config(tiny)
    specs = [TrialSpec("cv", "none", {}, seed, 0, 2) for seed in (0, 1)]
    outcomes = run_group(config, specs)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all(o.error == "RuntimeError: out of memory" and o.group == 2 for o in outcomes)
    assert all(0.1 <= o.duration < 1.0 for o in outcomes)  # 0.2 s / 2 members each (was 0.0)
