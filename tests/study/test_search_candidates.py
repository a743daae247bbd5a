"""Search candidates against the references: distinct like scikit-learn's ParameterSampler, seeded
like Optuna's RandomSampler, ranges spaced like numpy.geomspace / linspace; a study trains each once."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import optuna
import pytest

from reglab.errors import UserError
from reglab.study import Study
from reglab.study.export import open_storage
from reglab.study.schema import Recipe, SearchConfig, Space, parse_config
from reglab.study.search import RecipeSearch


def _tpe_all(search, score):
    cands = search.initial()
    while (nxt := search.next([(c, score(c)) for c in cands])) is not None:
        cands.append(nxt)
    return cands


def test_random_search_of_listed_values_draws_each_combination_at_most_once():
    # Optuna's RandomSampler draws with replacement: 8 draws of 3 choices gave 0.5 five times.
    r = Recipe(name="d", dropout={"choice": [0.1, 0.3, 0.5]})
    s = RecipeSearch(r, SearchConfig(method="random", trials=8))
    assert s.total == 3 and sorted(c["dropout"] for c in s.initial()) == [0.1, 0.3, 0.5]
    # Fewer trials than combinations: distinct, seeded, inside the space (sampling without replacement).
    r2 = Recipe(name="d", dropout={"choice": [0.1, 0.2, 0.3, 0.4]}, l2={"grid": [1e-3, 1e-2, 1e-1]})
    a = RecipeSearch(r2, SearchConfig(method="random", trials=10, seed=1)).initial()
    assert len(a) == 10 and len({(c["dropout"], c["l2"]) for c in a}) == 10
    assert a == RecipeSearch(r2, SearchConfig(method="random", trials=10, seed=1)).initial()


def test_random_draws_without_repeats_are_optunas_seeded_draws():
    # A space whose draws never repeat keeps the seeds it always had: candidate i is RandomSampler(base + i).
    r = Recipe(name="l2", l2={"loguniform": [1e-5, 1e-1]})
    got = RecipeSearch(r, SearchConfig(method="random", trials=4, seed=2)).initial()
    base = 2 * 1_000_003 + zlib.crc32(b"l2")
    dist = {"l2": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)}
    ref = [optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=base + i)).ask(dist).params["l2"]
           for i in range(4)]
    assert [c["l2"] for c in got] == ref


def test_tpe_over_listed_values_proposes_each_combination_once():
    # TPE proposed [1.0, 1.0, 1.0, 0.001, 0.1, 1.0, 0.001, 0.1]: 8 "candidates", 3 distinct.
    r = Recipe(name="d", l2={"choice": [1e-3, 1e-1, 1.0]})
    search = RecipeSearch(r, SearchConfig(method="tpe", trials=8, metric="val_loss"))
    cands = _tpe_all(search, lambda c: c["l2"])
    assert search.total == 3 and sorted(c["l2"] for c in cands) == [1e-3, 1e-1, 1.0]
    r2 = Recipe(name="d", l2={"choice": [1e-4, 1e-3, 1e-2, 1e-1, 1.0]}, dropout={"grid": [0.0, 0.5]})
    search = RecipeSearch(r2, SearchConfig(method="tpe", trials=9, metric="val_loss"))
    cands = _tpe_all(search, lambda c: c["l2"] + c["dropout"])
    assert len(cands) == 9 and len({(c["l2"], c["dropout"]) for c in cands}) == 9
    assert cands == _tpe_all(RecipeSearch(r2, SearchConfig(method="tpe", trials=9, metric="val_loss")),
                             lambda c: c["l2"] + c["dropout"])


def test_a_random_study_over_a_choice_trains_each_candidate_once(tiny, tmp_path):
    # Repeated draws were one trial key planned twice: trained twice, stored once, with a warning
    # that 'another process' had taken the trials over, and the path listed each point twice.
    tiny["search"] = {"method": "random", "trials": 4}
    tiny["recipes"] = {"none": {}, "l2": {"l2": {"choice": [1e-3, 1e-1]}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = Study(tiny).run(out=tmp_path, progress=False)
    assert res["recipes"]["l2"]["candidates"] == 2
    assert [p["params"]["l2"] for p in res["recipes"]["l2"]["path"]] == [1e-3, 1e-1]
    store = open_storage(tmp_path)
    cv = [t for t in store.trials() if t["phase"] == "cv" and t["recipe"] == "l2"]
    store.close()
    assert len(cv) == 2 * 2 * 2 and all(t["attempts"] == 1 for t in cv)  # 2 candidates x 2 seeds x 2 folds


def test_a_range_under_grid_search_is_numpys_spacing_with_the_ranges_own_ends():
    # exp(log(.)) gave [9.999999999999997e-06, ..., 0.010000000000000004]: the top point above the range.
    log = Space(loguniform=(1e-5, 1e-2), points=4).values()
    assert log == np.geomspace(1e-5, 1e-2, 4).tolist() == [1e-5, 1e-4, 1e-3, 1e-2]
    lin = Space(uniform=(0.1, 0.7), points=4).values()
    assert lin == np.linspace(0.1, 0.7, 4).tolist() and lin[0] == 0.1 and lin[-1] == 0.7
    for lo, hi, n in ((3e-7, 0.3, 7), (1e-3, 2.0, 5), (0.01, 0.011, 3)):
        v = Space(loguniform=(lo, hi), points=n).values()
        assert v[0] == lo and v[-1] == hi and all(lo <= x <= hi for x in v)


@pytest.mark.parametrize("space, shown", [({"grid": [1e-3, 1e-2, 1e-3]}, "0.001"),
                                          ({"choice": [0.5, 0.5]}, "0.5")])
def test_a_value_listed_twice_is_refused(tiny, space, shown):
    tiny["recipes"]["l2"] = {"l2": space} if "grid" in space else {"dropout": space}
    with pytest.raises(UserError) as err:
        parse_config(tiny)
    msg = str(err.value)
    assert "\n" not in msg and "recipes.l2" in msg and f"got {shown} more than once" in msg
