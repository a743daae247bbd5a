"""reglab's proximal training reproduces scikit-learn's Lasso / ElasticNet outputs, float64.

The harness (FISTA = ``proximal(SGD(lr=1/L), penalty)`` plus Nesterov extrapolation, warm starts
along a path, folds fitted as one stacked model) lives in ``benchmarks/sklearn_reproduction.py``,
which runs the same cases at full size. References are scikit-learn fits at ``tol=1e-14``; the
docstring examples are also checked against the numbers printed in scikit-learn's docstrings.
Tolerances: coefficients 1e-6 absolute with identical exact zeros (the harness stops at a
proximal step of 1e-13 relative, which lands about 1e-9 from the optimum on these problems).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import ElasticNetCV, Lasso, enet_path, lasso_path
from sklearn.model_selection import KFold


def _load_harness():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sklearn_reproduction.py"
    spec = importlib.util.spec_from_file_location("sklearn_reproduction", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


repro = _load_harness()
TIGHT = repro.TIGHT


def _assert_same_solution(ours: np.ndarray, ref: np.ndarray, atol: float = 1e-6) -> None:
    np.testing.assert_array_equal(ours == 0, ref == 0)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=atol)


def test_lasso_docstring_example():
    """Lasso(alpha=0.1) on X=[[0,0],[1,1],[2,2]], y=[0,1,2]: coef_ [0.85, 0], intercept_ 0.15.

    The two columns are identical, so every split of 0.85 between them is optimal: coordinate
    descent puts it all on the first, proximal gradient from 0 keeps them equal. By hand: on the
    centered column [-1, 0, 1] the 1-D lasso gives (2/3 - 0.1) / (2/3) = 0.85, intercept 1 - 0.85.
    """
    x, y = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), np.array([0.0, 1.0, 2.0])
    sk = Lasso(alpha=0.1).fit(x, y)
    np.testing.assert_allclose(sk.coef_, [0.85, 0.0], atol=5e-9)  # the docstring's printed values
    assert sk.intercept_ == pytest.approx(0.15, abs=5e-9)
    fit = repro.fit_path(repro.LeastSquares([x], [y], intercept=True), [0.1], 1.0)
    coef, intercept = fit.coefs[0, 0], fit.intercepts[0, 0]
    np.testing.assert_allclose(coef, [0.425, 0.425], rtol=0, atol=1e-10)
    assert intercept == pytest.approx(0.15, abs=1e-10)
    np.testing.assert_allclose(x @ coef + intercept, sk.predict(x), rtol=0, atol=1e-10)

    def objective(w: np.ndarray, b: float) -> float:
        return float(((y - x @ w - b) ** 2).mean() / 2 + 0.1 * np.abs(w).sum())

    assert objective(coef, intercept) == pytest.approx(objective(sk.coef_, sk.intercept_), abs=1e-12)


def test_lasso_path_docstring_example():
    """lasso_path(X, y, alphas=[5, 1, .5]): the exact (LARS) path to its 8 printed digits.

    The docstring prints two paths: coordinate descent at the default tol (0.46874778 in the
    corner) and LARS interpolated (0.46915237), which is exact. reglab matches the exact one.
    """
    x = np.array([[1, 2, 3.1], [2.3, 5.4, 4.3]]).T
    y = np.array([1, 2, 3.1])
    lars = np.array([[0.0, 0.0, 0.46915237], [0.2159048, 0.4425765, 0.23668876]])
    default_cd = np.array([[0.0, 0.0, 0.46874778], [0.2159048, 0.4425765, 0.23689075]])
    fit = repro.fit_path(repro.LeastSquares([x], [y], intercept=False), [5.0, 1.0, 0.5], 1.0)
    ours = fit.coefs[:, 0].T
    _assert_same_solution(ours, lars, atol=5e-8)  # printed to 7-8 significant digits
    _, tight, _ = lasso_path(x, y, alphas=[5.0, 1.0, 0.5], **TIGHT)
    _assert_same_solution(ours, tight, atol=1e-9)
    np.testing.assert_allclose(ours, default_cd, rtol=0, atol=5e-4)  # the default tol's own error
    assert np.abs(ours - default_cd).max() > 1e-4  # ... which is real: reglab is not the default fit


def test_enet_path_docstring_example():
    """enet_path(X, y, alphas=3) on make_regression(100, 5, n_informative=2, random_state=0)."""
    x, y = make_regression(n_samples=100, n_features=5, n_informative=2, random_state=0)
    printed = np.array([
        [0.0, 0.787, 0.568], [0.0, 1.120, 0.620], [-0.0, -2.129, -1.128],
        [0.0, 23.046, 88.939], [0.0, 10.637, 41.566],
    ])
    alphas, tight, _ = enet_path(x, y, alphas=3, **TIGHT)
    fit = repro.fit_path(repro.LeastSquares([x], [y], intercept=False), alphas, 0.5)
    ours = fit.coefs[:, 0].T
    _assert_same_solution(ours, tight, atol=1e-9)
    np.testing.assert_allclose(ours, printed, rtol=0, atol=1e-3)  # printed to 3 decimals


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return repro.standardized_diabetes()


@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_full_enet_path_on_diabetes(diabetes, l1_ratio):
    """All 100 alphas of enet_path (alpha_max down to alpha_max/1000), warm-started like glmnet."""
    x, y = diabetes
    alphas, ref, _ = enet_path(x, y, l1_ratio=l1_ratio, **TIGHT)
    assert len(alphas) == 100
    fit = repro.fit_path(repro.LeastSquares([x], [y], intercept=False), alphas, l1_ratio)
    ours = fit.coefs[:, 0].T  # (features, alphas), like scikit-learn's
    assert (ref == 0).all(axis=0)[0] and (ref != 0).all(axis=0)[-1]  # from all-zero to all-active
    assert 0.1 < (ref == 0).mean() < 0.9
    _assert_same_solution(ours, ref, atol=1e-6)


def test_elastic_net_cv_choice_and_mse_path(diabetes):
    """ElasticNetCV(l1_ratio=[.5, 1], cv=KFold(5)) vs reglab fits of the same folds + mean validation MSE.

    mse_path_ agrees to 1e-8 relative, and the same (l1_ratio, alpha) wins.
    """
    x, y = diabetes
    folds = list(KFold(5).split(x))
    ratios = [0.5, 1.0]
    sk = ElasticNetCV(l1_ratio=ratios, alphas=30, cv=folds, **TIGHT).fit(x, y)
    mse = np.stack([repro.cv_mse_path(x, y, folds, a, r)[0] for r, a in zip(ratios, sk.alphas_)])
    np.testing.assert_allclose(mse, sk.mse_path_, rtol=1e-8, atol=0)
    best = np.unravel_index(np.argmin(mse.mean(axis=2)), mse.shape[:2])
    assert (ratios[best[0]], sk.alphas_[best]) == (sk.l1_ratio_, sk.alpha_)
    assert 0 < best[1] < mse.shape[1] - 1  # an interior optimum: the choice is not decided by the grid's end
