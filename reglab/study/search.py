"""Candidate strengths for one recipe: grid, random (Optuna's RandomSampler) or TPE (Optuna).

Every candidate is a function of (study seed, recipe name, candidate index, earlier
results) only: the sampler is re-seeded for each index and told the earlier
candidates' validation scores, so a resumed study proposes exactly the candidates an
uninterrupted one would, and random candidates need no storage of their own.
Candidates are distinct: a draw equal to an earlier candidate is drawn again with the next
seed (as scikit-learn's ParameterSampler samples a list-only space without replacement), and
a space of grid / choice values only offers at most its number of combinations.

Example:
    >>> from reglab.study.schema import Recipe, SearchConfig
    >>> s = RecipeSearch(Recipe(name="l2", l2={"grid": [1e-4, 1e-3]}, dropout=0.1), SearchConfig())
    >>> s.initial()
    [{'dropout': 0.1, 'l2': 0.0001}, {'dropout': 0.1, 'l2': 0.001}]
"""

from __future__ import annotations

import itertools
import math
import warnings
import zlib
from typing import Any

import optuna

from reglab.study.schema import BudgetConfig, Recipe, SearchConfig, Space, lower_is_better
from reglab.study.storage import params_key

__all__ = ["RecipeSearch"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _distribution(space: Space) -> optuna.distributions.BaseDistribution:
    if space.loguniform is not None:
        return optuna.distributions.FloatDistribution(*space.loguniform, log=True)
    if space.uniform is not None:
        return optuna.distributions.FloatDistribution(*space.uniform)
    choices = space.grid if space.grid is not None else space.choice
    return optuna.distributions.CategoricalDistribution(choices)


class RecipeSearch:
    """The candidates of one recipe under a search method.

    ``initial()`` returns the candidates that need no results (all of them for grid and
    random search; the first for TPE); ``next(history)`` returns TPE's next candidate
    given ``[(params, score or None), ...]`` of the earlier ones, or ``None`` when done.
    """

    def __init__(self, recipe: Recipe, search: SearchConfig, budget: BudgetConfig | None = None):
        self.recipe, self.search = recipe, search
        self.budget = budget or BudgetConfig()
        self.fixed = recipe.fixed()
        self.spaces = recipe.spaces()
        self.method = "fixed" if not self.spaces else search.method
        limit = self.budget.max_candidates
        if self.method == "fixed":
            self.total = 1
        elif self.method == "grid":
            self.total = math.prod(len(s.values()) for s in self.spaces.values())
        else:
            self.total = search.trials
            size = self._discrete_size()
            if size is not None:  # grid / choice values only: every combination at most once
                self.total = min(self.total, size)
        if limit is not None:
            self.total = min(self.total, limit)

    @property
    def sequential(self) -> bool:
        """True when each candidate depends on earlier results (TPE)."""
        return self.method == "tpe"

    def _discrete_size(self) -> int | None:
        """The number of combinations when every space lists its values, else ``None``."""
        if any(s.grid is None and s.choice is None for s in self.spaces.values()):
            return None
        return math.prod(len(s.values()) for s in self.spaces.values())

    def _distinct(self, draw: Any, seen: list[dict[str, Any]]) -> dict[str, Any]:
        """``draw(attempt)`` until it differs from every candidate in ``seen``; a discrete space that
        keeps repeating itself gives its first unseen combination in grid order instead."""
        keys = {params_key(c) for c in seen}
        for attempt in range(_ATTEMPTS):
            c = draw(attempt)
            if params_key(c) not in keys:
                return c
        if self._discrete_size() is not None:
            names = list(self.spaces)
            for combo in itertools.product(*(self.spaces[n].values() for n in names)):
                c = self._merge(dict(zip(names, combo)))
                if params_key(c) not in keys:
                    return c
        raise RuntimeError(f"recipe {self.recipe.name!r}: no new candidate in {_ATTEMPTS} draws")

    def _merge(self, values: dict[str, Any]) -> dict[str, Any]:
        return dict(sorted({**self.fixed, **values}.items()))

    def initial(self) -> list[dict[str, Any]]:
        if self.method == "fixed":
            return [self._merge({})]
        if self.method == "grid":
            names = list(self.spaces)
            combos = itertools.product(*(self.spaces[n].values() for n in names))
            return [self._merge(dict(zip(names, c))) for c in itertools.islice(combos, self.total)]
        if self.method == "random":
            # Draw j uses seed base + j (j counts every draw, repeats included): the seeds a search
            # without repeats always used, so such a study resumes with the same candidates.
            draws = itertools.count()
            out: list[dict[str, Any]] = []
            for _ in range(self.total):
                out.append(self._distinct(lambda _a: self._sample(next(draws), []), out))
            return out
        return [self._sample(0, [])]

    def next(self, history: list[tuple[dict[str, Any], float | None]]) -> dict[str, Any] | None:
        """TPE's candidate number ``len(history)``, or ``None`` when the budget is spent."""
        if not self.sequential or len(history) >= self.total:
            return None
        earlier = [c for c, _ in history]
        return self._distinct(lambda a: self._sample(len(history), history, a), earlier)

    def _sample(self, index: int, history: list[tuple[dict[str, Any], float | None]],
                attempt: int = 0) -> dict[str, Any]:
        base = self.search.seed * 1_000_003 + zlib.crc32(self.recipe.name.encode())
        seed = (base + index + attempt * 7_919_993) % 2**31  # attempt 0: the seed before repeats were redrawn
        if self.method == "random":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, self.total))
        direction = "minimize" if lower_is_better(self.search.metric) else "maximize"  # val_mse too
        study = optuna.create_study(sampler=sampler, direction=direction)
        dists = {n: _distribution(s) for n, s in self.spaces.items()}
        for params, score in history:
            failed = score is None or not math.isfinite(score)
            study.add_trial(
                optuna.trial.create_trial(
                    params={n: params[n] for n in dists},
                    distributions=dists,
                    value=None if failed else float(score),
                    state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
                )
            )
        trial = study.ask(dists)
        return self._merge({n: _plain(trial.params[n]) for n in dists})


_ATTEMPTS = 200  # redraws of a repeated candidate before a discrete space is walked in grid order


def _plain(v: Any) -> Any:
    """Optuna may hand back numpy scalars; storage keys need plain JSON values."""
    return v.item() if hasattr(v, "item") else v
