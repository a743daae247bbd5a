"""Candidates per recipe: grid order, seeded random draws inside the space, TPE resumable from history."""

from __future__ import annotations

import math

from reglab.study.schema import BudgetConfig, Recipe, SearchConfig
from reglab.study.search import RecipeSearch


def recipe(**kw):
    return Recipe(name="r", **kw)


def test_fixed_recipe_has_one_candidate():
    s = RecipeSearch(recipe(dropout=0.1), SearchConfig(method="tpe"))
    assert s.initial() == [{"dropout": 0.1}] and not s.sequential and s.total == 1


def test_grid_is_the_cartesian_product_in_order():
    s = RecipeSearch(recipe(l2={"grid": [1e-4, 1e-3]}, dropout={"grid": [0.1, 0.2]}, norm="layer"),
                     SearchConfig(method="grid"))
    got = [(c["l2"], c["dropout"], c["norm"]) for c in s.initial()]
    assert got == [(1e-4, 0.1, "layer"), (1e-4, 0.2, "layer"), (1e-3, 0.1, "layer"), (1e-3, 0.2, "layer")]
    capped = RecipeSearch(s.recipe, SearchConfig(method="grid"), BudgetConfig(max_candidates=3))
    assert len(capped.initial()) == 3


def test_random_draws_are_seeded_and_inside_the_space():
    r = recipe(l2={"loguniform": [1e-5, 1e-1]}, dropout={"choice": [0.1, 0.3]})
    a = RecipeSearch(r, SearchConfig(method="random", trials=20, seed=3)).initial()
    b = RecipeSearch(r, SearchConfig(method="random", trials=20, seed=3)).initial()
    c = RecipeSearch(r, SearchConfig(method="random", trials=20, seed=4)).initial()
    assert a == b and a != c
    assert all(1e-5 <= x["l2"] <= 1e-1 and x["dropout"] in (0.1, 0.3) for x in a)
    logs = [math.log10(x["l2"]) for x in a]
    assert min(logs) < -3.5 and max(logs) > -2.5  # spread over decades, not clustered near the top
    assert len({x["l2"] for x in a}) == 20


def test_tpe_is_sequential_and_replays_identically_from_history():
    r = recipe(l2={"loguniform": [1e-5, 1e-1]})
    cfg = SearchConfig(method="tpe", trials=7, seed=0)

    def score(c):  # a smooth objective with its best at l2 = 1e-3
        return -abs(math.log10(c["l2"]) + 3)

    run = RecipeSearch(r, cfg)
    assert run.sequential and len(run.initial()) == 1
    cands = run.initial()
    while (nxt := run.next([(c, score(c)) for c in cands])) is not None:
        cands.append(nxt)
    assert len(cands) == 7
    # A fresh search given the same history (a resumed study) proposes the same next candidate.
    again = RecipeSearch(r, cfg)
    assert again.next([(c, score(c)) for c in cands[:5]]) == cands[5]
    # Failed (diverged) candidates are accepted as history.
    assert RecipeSearch(r, cfg).next([(cands[0], None)]) is not None


def test_tpe_proposes_near_the_best_candidates_for_every_metric_direction():
    # Ten candidates on [0, 1] scored so that l2 near 0 is best; TPE samples where the good ones are.
    # val_mse is lower-is-better like val_loss (TPE maximized it, proposing the worst region: 0.996).
    scores = {"val_mse": lambda x: x, "val_loss": lambda x: x, "val_accuracy": lambda x: 1 - x}
    for metric, score in scores.items():
        search = RecipeSearch(Recipe(name="l2", l2={"uniform": [0.0, 1.0]}),
                              SearchConfig(method="tpe", trials=20, metric=metric))
        history = [({"l2": x}, score(x)) for x in (i / 11 for i in range(1, 11))]
        assert search.next(history)["l2"] < 0.3, metric
