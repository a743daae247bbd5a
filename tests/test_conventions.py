"""reglab.conventions: every conversion against the other framework's own objective, and round trips."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPRegressor
from torch import nn

from reglab import conventions as conv
from reglab._validation import InvalidParameterError
from reglab.penalties import L1, L2, ElasticNet


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = X @ np.array([1.5, -2.0, 0.0, 0.5, 3.0]) + 0.3 * rng.standard_normal(40)
    return X - X.mean(0), y - y.mean()


def _linear(w: np.ndarray) -> nn.Linear:
    layer = nn.Linear(len(w), 1, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w)[None])
    return layer


def _half_mse_plus(penalty, X, y, w) -> float:
    layer = _linear(w)
    with torch.no_grad():
        return float(0.5 * ((layer(torch.tensor(X))[:, 0] - torch.tensor(y)) ** 2).mean() + penalty(layer))


# ---------------------------------------------------------------- objectives equal the frameworks' formulas


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.3, 0.0), (0.3, 0.25), (1.7, 1.0)])
def test_from_sklearn_equals_sklearn_elastic_net_objective(regression, alpha, l1_ratio):
    X, y = regression
    n = len(y)
    w = np.random.default_rng(1).standard_normal(5)
    sklearn_objective = (
        np.sum((y - X @ w) ** 2) / (2 * n)
        + alpha * l1_ratio * np.abs(w).sum()
        + alpha * (1 - l1_ratio) / 2 * np.sum(w**2)
    )
    penalty = ElasticNet.from_sklearn(alpha=alpha, l1_ratio=l1_ratio)
    assert _half_mse_plus(penalty, X, y, w) == pytest.approx(sklearn_objective, rel=1e-12)
    if l1_ratio == 1.0:
        assert _half_mse_plus(L1.from_sklearn(alpha), X, y, w) == pytest.approx(sklearn_objective, rel=1e-12)


def test_from_glmnet_equals_glmnet_gaussian_objective(regression):
    X, y = regression
    n, lam, a = len(y), 0.8, 0.3
    w = np.random.default_rng(2).standard_normal(5)
    glmnet_objective = np.sum((y - X @ w) ** 2) / (2 * n) + lam * (
        (1 - a) / 2 * np.sum(w**2) + a * np.abs(w).sum()
    )
    assert _half_mse_plus(ElasticNet.from_glmnet(lambda_=lam, alpha=a), X, y, w) == pytest.approx(
        glmnet_objective, rel=1e-12
    )


def test_from_ridge_reproduces_sklearn_ridge(regression):
    X, y = regression
    alpha, n = 7.0, len(y)
    ridge = Ridge(alpha=alpha, fit_intercept=False).fit(X, y)
    l2 = L2.from_ridge(alpha, n_samples=n).strength
    # Minimizer of 0.5·MSE + l2·||w||²: (XᵀX/n + 2·l2·I) w = Xᵀy/n.
    w = np.linalg.solve(X.T @ X / n + 2 * l2 * np.eye(5), X.T @ y / n)
    np.testing.assert_allclose(w, ridge.coef_, rtol=1e-10)


def test_from_logistic_regression_is_stationary_at_sklearn_solution():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 4))
    y = (X @ np.array([1.0, -1.0, 2.0, 0.0]) + rng.standard_normal(60) > 0).astype(int)
    C = 0.5
    ref = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, y)
    layer = _linear(ref.coef_[0])
    penalty = L2.from_logistic_regression(C, n_samples=len(y))
    logits = layer(torch.tensor(X))[:, 0]
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(y, dtype=torch.float64))
    (grad,) = torch.autograd.grad(loss + penalty(layer), layer.weight, retain_graph=True)
    assert float(grad.abs().max()) < 1e-7
    (grad_wrong,) = torch.autograd.grad(loss + L2(1 / C)(layer), layer.weight)  # the naive reading
    assert float(grad_wrong.abs().max()) > 1e-2


def test_from_mlp_reproduces_sklearn_mlp_alpha(regression):
    X, y = regression
    alpha, n = 3.0, len(y)
    # hidden_layer_sizes=() is a linear model; lbfgs sees the whole set, so n is the training size.
    ref = MLPRegressor(hidden_layer_sizes=(), solver="lbfgs", alpha=alpha, tol=1e-15, max_iter=10_000)
    ref.fit(X, y)
    l2 = L2.from_mlp(alpha, n_samples=n).strength
    # MLPRegressor's loss is 0.5·MSE, with an intercept (X and y are centred, so it is ~0).
    w = np.linalg.solve(X.T @ X / n + 2 * l2 * np.eye(5), X.T @ y / n)
    np.testing.assert_allclose(ref.coefs_[0][:, 0], w, rtol=1e-5, atol=1e-6)


def test_from_weight_decay_gradient_is_wd_times_w():
    layer = _linear(np.array([1.0, -2.0, 0.5]))
    (grad,) = torch.autograd.grad(L2.from_weight_decay(0.01)(layer), layer.weight)
    torch.testing.assert_close(grad, 0.01 * layer.weight.detach(), rtol=0, atol=0)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.0, 1.0), (0.5, 0.0), (1.3, 0.37), (2.0, 1.0)])
def test_sklearn_and_glmnet_round_trips(alpha, l1_ratio):
    back = ElasticNet.from_sklearn(alpha=alpha, l1_ratio=l1_ratio).to_sklearn()
    assert back == pytest.approx({"alpha": alpha, "l1_ratio": l1_ratio})
    back = ElasticNet.from_glmnet(lambda_=alpha, alpha=l1_ratio).to_glmnet()
    assert back == pytest.approx({"lambda_": alpha, "alpha": l1_ratio})
    assert L1.from_sklearn(alpha).to_sklearn() == {"alpha": alpha}
    assert L1(alpha).to_glmnet() == pytest.approx({"lambda_": alpha, "alpha": 1.0})
    assert L2(alpha).to_glmnet() == pytest.approx({"lambda_": 2 * alpha, "alpha": 0.0 if alpha else 1.0})


@pytest.mark.parametrize("value", [0.0, 1e-4, 0.3])
def test_l2_round_trips(value):
    assert L2.from_weight_decay(value).to_weight_decay() == pytest.approx(value)
    assert L2.from_ridge(value, n_samples=37).to_ridge(n_samples=37) == pytest.approx({"alpha": value})
    assert L2.from_mlp(value, n_samples=200).to_mlp(n_samples=200) == pytest.approx({"alpha": value})
    assert L2.from_weight_decay(value).to_sklearn() == pytest.approx(
        {"alpha": value, "l1_ratio": 0.0 if value else 1.0}
    )
    assert ElasticNet.from_keras(l1=value, l2=2 * value).to_keras() == {"l1": value, "l2": 2 * value}


@pytest.mark.parametrize(("C", "l1_ratio"), [(0.5, 0.0), (2.0, 0.3), (10.0, 1.0)])
def test_logistic_regression_round_trips(C, l1_ratio):
    penalty = ElasticNet.from_logistic_regression(C, n_samples=80, l1_ratio=l1_ratio)
    assert penalty.to_logistic_regression(n_samples=80) == pytest.approx({"C": C, "l1_ratio": l1_ratio})
    assert L2.from_logistic_regression(C, n_samples=80).to_logistic_regression(n_samples=80) == pytest.approx(
        {"C": C, "l1_ratio": 0.0}
    )


def test_no_penalty_is_c_inf():
    assert conv.from_logistic_regression(math.inf, n_samples=10) == (0.0, 0.0)
    assert conv.to_logistic_regression(0.0, 0.0, n_samples=10) == {"C": math.inf, "l1_ratio": 0.0}


# ---------------------------------------------------------------- impossible conversions and bad input


def test_impossible_conversions_raise_clear_errors():
    with pytest.raises(InvalidParameterError) as err:
        L1(0.1).to_weight_decay()
    assert str(err.value) == (
        "The 'l1' parameter of to_weight_decay must be 0 (PyTorch's weight_decay is an L2 penalty only). "
        "Got 0.1 instead."
    )
    with pytest.raises(InvalidParameterError, match="'l1' parameter of to_weight_decay"):
        ElasticNet(l1=0.1, l2=0.2).to_weight_decay()
    assert ElasticNet(l2=0.2).to_weight_decay() == pytest.approx(0.4)
    with pytest.raises(InvalidParameterError, match="'l1' parameter of to_ridge must be 0"):
        conv.to_ridge(0.1, 0.2, n_samples=5)
    with pytest.raises(InvalidParameterError, match="'l1' parameter of to_mlp must be 0"):
        conv.to_mlp(0.1, 0.2, n_samples=5)
    with pytest.raises(InvalidParameterError, match="'l2' parameter of Lasso conversion must be 0"):
        conv.to_sklearn_lasso(0.1, 0.2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ElasticNet.from_sklearn(alpha=1.0, l1_ratio=1.5),
            "The 'l1_ratio' parameter of ElasticNet.from_sklearn must be a float in the range [0, 1]. "
            "Got 1.5 instead.",
        ),
        (
            lambda: ElasticNet.from_sklearn(alpha=-1.0),
            "The 'alpha' parameter of ElasticNet.from_sklearn must be a float in the range [0, inf). "
            "Got -1.0 instead.",
        ),
        (
            lambda: ElasticNet.from_glmnet(lambda_=float("nan")),
            "The 'lambda_' parameter of ElasticNet.from_glmnet must be a float in the range [0, inf). "
            "Got nan instead.",
        ),
        (
            lambda: L2.from_ridge(1.0, n_samples=0),
            "The 'n_samples' parameter of L2.from_ridge must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            lambda: L2.from_logistic_regression(0.0, n_samples=10),
            "The 'C' parameter of from_logistic_regression must be a float in the range (0, inf]. "
            "Got 0.0 instead.",
        ),
        (
            lambda: L2.from_weight_decay(-1e-4),
            "The 'weight_decay' parameter of L2.from_weight_decay must be a float in the range [0, inf). "
            "Got -0.0001 instead.",
        ),
    ],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(InvalidParameterError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv.to_weight_decay(0.0, "a"), r"'l2' parameter of to_weight_decay must be a float in"),
        (lambda: conv.to_ridge(0.0, -1.0, n_samples=10), r"'l2' parameter of to_ridge must be .* Got -1.0"),
        (lambda: conv.to_glmnet(math.nan, 0.0), r"'l1' parameter of to_glmnet must be a float .* Got nan"),
        (lambda: conv.from_logistic_regression(1e-320, n_samples=10),
         r"'C' parameter of from_logistic_regression must be large enough that 1/\(C·n\) is a finite float"),
        (lambda: conv.to_logistic_regression(0.0, 1e-320, n_samples=10),
         r"parameter of to_logistic_regression must be large enough that 1/\(n·\(l1 \+ 2·l2\)\) is finite"),
    ],
)
def test_conversions_refuse_what_has_no_finite_counterpart(call, message):
    """Strings, negatives and NaN used to pass through (to_weight_decay(0, 'a') gave 'aa'), and a tiny
    strength became C = inf, which reads as no penalty at all."""
    with pytest.raises(InvalidParameterError, match=message):
        call()


def _glmnet_gaussian(X, y, lam, a):
    """glmnet's gaussian fit (intercept, standardize=FALSE), step by step as its Fortran does it:
    y -> (y - ȳ)/s with s the 1/n standard deviation, solve with λ/s (vlam=ulam/ys), coefficients × s.
    scikit-learn's ElasticNet, whose objective is glmnet's documented one, is the inner solver."""
    from sklearn.linear_model import ElasticNet as SkElasticNet

    s = y.std()
    inner = SkElasticNet(alpha=lam / s, l1_ratio=a, tol=1e-14, max_iter=100_000).fit(X, (y - y.mean()) / s)
    return inner.coef_ * s, s


@pytest.mark.parametrize("a", [0.0, 0.4])
def test_from_glmnet_y_std_matches_glmnets_internal_y_scaling(regression, a):
    X, y = regression
    y = 25.0 * y + 7.0  # far from unit variance, so glmnet's scaling of y matters
    n, lam = len(y), 3.0
    beta, s = _glmnet_gaussian(X, y, lam, a)

    def stationarity_gap(penalty) -> float:
        # Optimality of 0.5·MSE + l1·|β|₁ + l2·|β|² at glmnet's β (X and the intercept are centred).
        r = X.T @ (X @ beta - (y - y.mean())) / n + 2 * penalty.l2 * beta
        nonzero = beta != 0
        gap = np.abs(r[nonzero] + penalty.l1 * np.sign(beta[nonzero]))
        return float(max(gap.max(initial=0.0), (np.abs(r[~nonzero]) - penalty.l1).max(initial=0.0)))

    penalty = ElasticNet.from_glmnet(lambda_=lam, alpha=a, y_std=s)
    assert penalty.l2 == pytest.approx(lam * (1 - a) / (2 * s), rel=1e-15)
    assert stationarity_gap(penalty) < 1e-9
    # The documented objective taken literally (y_std=1) is not what glmnet minimized.
    assert stationarity_gap(ElasticNet.from_glmnet(lambda_=lam, alpha=a)) > 1e-2
    back = penalty.to_glmnet(y_std=s)
    assert back == pytest.approx({"lambda_": lam, "alpha": a if a else 0.0}, rel=1e-14)
    if a == 0.0:
        assert L2(penalty.l2).to_glmnet(y_std=s) == pytest.approx({"lambda_": lam, "alpha": 0.0}, rel=1e-14)


def test_glmnet_y_std_bad_input():
    message = r"^The 'y_std' parameter of ElasticNet.from_glmnet must be a float in the range \(0, inf\)\."
    with pytest.raises(InvalidParameterError, match=message + r" Got 0\.0 instead\.$"):
        ElasticNet.from_glmnet(lambda_=1.0, alpha=0.5, y_std=0.0)
    with pytest.raises(InvalidParameterError, match=r"'y_std' parameter of to_glmnet .* Got nan"):
        ElasticNet(l1=0.1, l2=0.1).to_glmnet(y_std=math.nan)
    with pytest.raises(InvalidParameterError, match=r"'y_std' parameter of ElasticNet.from_glmnet .* finite"):
        ElasticNet.from_glmnet(lambda_=1.0, alpha=0.0, y_std=1e-310)
