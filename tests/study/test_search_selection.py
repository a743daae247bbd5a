"""Selection and successive halving against hand-computed cases: rung epochs and sizes as docs/studies.md
gives them, ties kept in search order (as scikit-learn's GridSearchCV's best_index_), direction by metric."""

from __future__ import annotations

import pytest

import reglab.study.backends as backends
from reglab.study import Study
from reglab.study.execute import TrialOutcome
from reglab.study.export import open_storage
from reglab.study.runner import _rung_sizes


def _scoring(monkeypatch, score):
    """Every trial's validation metrics from ``score(spec)``, without training."""
    def scored(config, specs):
        out = []
        for s in specs:
            v = score(s)
            m = {"val_accuracy": v, "val_loss": v, "weight_norm": 1.0, "zero_fraction": 0.0}
            if s.phase == "final":
                m |= {"test_accuracy": 0.5, "test_loss": 0.5}
            out.append(TrialOutcome(s, "done", m, [{"epoch": 0, "train_loss": 1.0, "val_loss": v}]))
        return out

    monkeypatch.setattr(backends, "run_group", scored)


def test_rung_sizes_by_hand():
    # ceil(n / eta) go on; stop at one candidate; the last rung is the full protocol.
    assert _rung_sizes(9, 3, 3) == ([9, 3], 1)
    assert _rung_sizes(10, 3, 3) == ([10, 4], 2)
    assert _rung_sizes(10, 2, 3) == ([10], 4)
    assert _rung_sizes(5, 4, 2) == ([5, 3, 2], 1)
    assert _rung_sizes(2, 2, 3) == ([2], 1)


def test_halving_rungs_train_the_documented_epochs_and_keep_ties_in_search_order(tiny, tmp_path, monkeypatch):
    grid = [round(1e-3 * (i + 1), 6) for i in range(9)]
    rung0 = [0.5, 0.9, 0.8, 0.8, 0.6, 0.8, 0.1, 0.2, 0.3]  # best third: 0.9, then the first two 0.8s
    rung1 = {grid[1]: 0.6, grid[2]: 0.7, grid[3]: 0.7}  # a tie: the earlier (grid[2]) goes on

    def score(s):
        if s.recipe != "l2":
            return 0.5
        i = grid.index(s.params["l2"])
        return {"rung0": rung0[i], "rung1": rung1.get(s.params["l2"], 0.0)}.get(s.phase, 0.7)

    _scoring(monkeypatch, score)
    tiny |= {"training": {"epochs": 20, "batch_size": 128}, "budget": {"halving": True, "eta": 3, "rungs": 3},
             "recipes": {"none": {}, "l2": {"l2": {"grid": grid}}}}
    res = Study(tiny).run(out=tmp_path, progress=False)
    store = open_storage(tmp_path)
    trials = [t for t in store.trials() if t["recipe"] == "l2"]
    store.close()
    by_phase: dict[str, list] = {}
    for t in trials:
        by_phase.setdefault(t["phase"], []).append(t)
    # 20 // 3**2 = 2 and 20 // 3 = 6 epochs on seeds[0], fold 0; then the full 20 on 2 seeds x 2 folds.
    assert {t["epochs_budget"] for t in by_phase["rung0"]} == {2} and len(by_phase["rung0"]) == 9
    assert {t["epochs_budget"] for t in by_phase["rung1"]} == {6}
    assert sorted(t["params"]["l2"] for t in by_phase["rung1"]) == [grid[1], grid[2], grid[3]]
    assert {(t["seed"], t["fold"]) for t in by_phase["rung0"] + by_phase["rung1"]} == {(0, 0)}
    assert {t["params"]["l2"] for t in by_phase["cv"]} == {grid[2]} and len(by_phase["cv"]) == 4
    assert {t["epochs_budget"] for t in by_phase["cv"]} == {20}
    assert res["recipes"]["l2"]["best_params"] == {"l2": grid[2]} and res["recipes"]["l2"]["candidates"] == 1


@pytest.mark.parametrize("metric, cv, chosen", [  # dyadic scores: equal means are equal in binary
    ("val_accuracy", {1e-3: (0.5, 0.5), 1e-2: (0.75, 0.5), 1e-1: (0.5, 0.75)}, 1e-2),  # tie: the earlier
    ("val_accuracy", {1e-3: (0.5, 0.5), 1e-2: (0.5, 0.5), 1e-1: (0.75, 0.5)}, 1e-1),
    ("val_loss", {1e-3: (0.75, 0.75), 1e-2: (0.25, 0.5), 1e-1: (0.5, 0.25)}, 1e-2),  # lower is better; tie
    ("val_loss", {1e-3: (0.25, 0.25), 1e-2: (0.25, 0.5), 1e-1: (0.5, 0.25)}, 1e-3),
])
def test_selection_takes_the_best_mean_over_seeds_and_folds_ties_to_the_earlier(tiny, tmp_path, monkeypatch,
                                                                                metric, cv, chosen):
    # The score of (seed, fold) is cv[l2][seed] + tiny fold offsets that cancel in the mean over folds.
    _scoring(monkeypatch, lambda s: 0.5 if s.recipe != "l2" or s.phase != "cv"
             else cv[s.params["l2"]][s.seed] + (0.125 if s.fold == 0 else -0.125))
    tiny |= {"search": {"metric": metric},
             "recipes": {"none": {}, "l2": {"l2": {"grid": [1e-3, 1e-2, 1e-1]}}}}
    res = Study(tiny).run(out=tmp_path, progress=False)
    assert res["recipes"]["l2"]["best_params"] == {"l2": chosen}


@pytest.mark.parametrize("method", ["tpe", "random"])
def test_a_search_interrupted_mid_way_resumes_to_the_same_candidates_and_choice(tiny, tmp_path, monkeypatch,
                                                                                 method):
    # TPE's candidate i depends on the earlier ones' scores: the resumed run replays them from storage.
    calls = {"n": 0, "stop": None}

    def score(s):
        return 1.0 - abs(s.params.get("l2", 0.01) - 0.01) + 0.01 * s.seed - 0.005 * s.fold

    def scored(config, specs):
        calls["n"] += 1
        if calls["stop"] is not None and calls["n"] == calls["stop"]:
            raise KeyboardInterrupt
        out = []
        for s in specs:
            m = {"val_accuracy": score(s), "val_loss": 0.0, "weight_norm": 1.0, "zero_fraction": 0.0}
            if s.phase == "final":
                m |= {"test_accuracy": 0.5, "test_loss": 0.5}
            out.append(TrialOutcome(s, "done", m, [{"epoch": 0, "train_loss": 1.0, "val_loss": 0.0}]))
        return out

    monkeypatch.setattr(backends, "run_group", scored)
    tiny |= {"search": {"method": method, "trials": 6},
             "recipes": {"none": {}, "l2": {"l2": {"uniform": [0.0, 0.05]}}}}
    ref = Study(tiny).run(out=tmp_path / "ref", progress=False)
    assert calls["n"] >= 3
    calls.update(stop=calls["n"] // 2 + 1, n=0)  # interrupted in the middle of the study
    with pytest.raises(KeyboardInterrupt):
        Study(tiny).run(out=tmp_path / "cut", progress=False)
    calls.update(n=0, stop=None)
    res = Study(tiny).run(out=tmp_path / "cut", progress=False)
    assert res["recipes"]["l2"]["path"] == ref["recipes"]["l2"]["path"]
    assert res["recipes"]["l2"]["best_params"] == ref["recipes"]["l2"]["best_params"]
    assert res["recipes"]["l2"]["candidates"] == 6
