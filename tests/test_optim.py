"""reglab.optim against references: torch's own optimizers, a hand-written AdamW, scikit-learn's Lasso."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.models import MLP
from reglab.optim import ProximalOptimizer, param_groups, proximal, sparsity
from reglab.penalties import L1, L2, ElasticNet, GroupLasso
from reglab.selectors import Selector


def _model(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(5, 3, hidden=(8, 8), norm="batch").double()


def _data(n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


# ---------------------------------------------------------------- param_groups


def test_param_groups_split_weights_from_biases_and_norms():
    model = _model()
    decay, rest = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert decay["names"] == ["hidden.0.linear.weight", "hidden.1.linear.weight", "out.weight"]
    assert "hidden.0.norm.weight" in rest["names"] and "out.bias" in rest["names"]
    assert len(decay["params"]) + len(rest["params"]) == len(list(model.parameters()))


def test_coupled_weight_decay_equals_l2_from_weight_decay_in_the_loss():
    """SGD(momentum=0.9, weight_decay=wd) on the selection == L2.from_weight_decay(wd) in the loss.

    The two differ only in rounding (grad + wd·w summed in another order); lr is kept where
    training is not chaotic, so those 1e-16 differences stay below 1e-12 over 200 steps.
    """
    wd, x, y = 0.05, *_data()
    a, b = _model(), _model()
    opt_a = torch.optim.SGD(param_groups(a, weight_decay=wd), lr=0.02, momentum=0.9)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.02, momentum=0.9)
    penalty = L2.from_weight_decay(wd)
    for _ in range(200):
        opt_a.zero_grad()
        _loss(a, x, y).backward()
        opt_a.step()
        opt_b.zero_grad()
        (_loss(b, x, y) + penalty(b)).backward()
        opt_b.step()
    assert _max_diff(a, b) < 1e-10
    assert _max_diff(a, _model()) > 1e-2  # it did train


def test_coupled_weight_decay_on_every_parameter():
    """With a selector taking everything, L2 in the loss equals plain SGD(weight_decay=wd)."""
    wd, x, y = 0.05, *_data()
    a, b = _model(), _model()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.02, momentum=0.9, weight_decay=wd)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.02, momentum=0.9)
    penalty = L2.from_weight_decay(wd, selector=Selector(include="*"))
    for _ in range(200):
        opt_a.zero_grad()
        _loss(a, x, y).backward()
        opt_a.step()
        opt_b.zero_grad()
        (_loss(b, x, y) + penalty(b)).backward()
        opt_b.step()
    assert _max_diff(a, b) < 1e-10


def test_decoupled_adamw_matches_torch_and_a_hand_written_update():
    wd, lr, x, y = 0.1, 1e-2, *_data()
    a, b, c = _model(), _model(), _model()
    opt_a = torch.optim.AdamW(param_groups(a, weight_decay=wd), lr=lr)
    selected = {n for n, _ in Selector().select(b)}
    groups_b = [
        {"params": [p for n, p in b.named_parameters() if n in selected], "weight_decay": wd},
        {"params": [p for n, p in b.named_parameters() if n not in selected], "weight_decay": 0.0},
    ]
    opt_b = torch.optim.AdamW(groups_b, lr=lr)
    # Hand-written AdamW (Loshchilov & Hutter with PyTorch's lr-multiplied decay).
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = {n: torch.zeros_like(p) for n, p in c.named_parameters()}
    v = {n: torch.zeros_like(p) for n, p in c.named_parameters()}
    for t in range(1, 51):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            _loss(model, x, y).backward()
            opt.step()
        c.zero_grad()
        _loss(c, x, y).backward()
        with torch.no_grad():
            for n, p in c.named_parameters():
                if n in selected:
                    p.mul_(1 - lr * wd)
                m[n] = beta1 * m[n] + (1 - beta1) * p.grad
                v[n] = beta2 * v[n] + (1 - beta2) * p.grad**2
                m_hat, v_hat = m[n] / (1 - beta1**t), v[n] / (1 - beta2**t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    # Adam divides by sqrt(v) + eps, which amplifies rounding differences: 1e-9 after 50 steps.
    assert _max_diff(a, b) == 0.0
    assert _max_diff(a, c) < 1e-9


def test_adamw_decay_is_not_l2_under_adam():
    """Decoupled decay and the 'equivalent' L2 penalty part ways under Adam (the AdamW paper's point)."""
    wd, lr, x, y = 0.1, 1e-2, *_data()
    a, b = _model(), _model()
    opt_a = torch.optim.AdamW(param_groups(a, weight_decay=wd), lr=lr)
    opt_b = torch.optim.Adam(b.parameters(), lr=lr)
    for _ in range(50):
        opt_a.zero_grad()
        _loss(a, x, y).backward()
        opt_a.step()
        opt_b.zero_grad()
        (_loss(b, x, y) + L2.from_weight_decay(wd)(b)).backward()
        opt_b.step()
    assert _max_diff(a, b) > 1e-3


def test_param_groups_rejects_bad_weight_decay():
    with pytest.raises(InvalidParameterError) as err:
        param_groups(_model(), weight_decay=-0.1)
    assert str(err.value) == (
        "The 'weight_decay' parameter of param_groups must be a float in the range [0, inf). "
        "Got -0.1 instead."
    )


# ---------------------------------------------------------------- proximal vs scikit-learn


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y - y.mean()


def _fista(penalty, X: np.ndarray, y: np.ndarray, steps: int = 500) -> tuple[np.ndarray, float]:
    """FISTA (Beck & Teboulle 2009): the proximal SGD step of reglab plus Nesterov extrapolation."""
    x_t, y_t = torch.tensor(X), torch.tensor(y)[:, None]
    lipschitz = float(np.linalg.eigvalsh(X.T @ X / len(y)).max())
    model = nn.Linear(X.shape[1], 1).double()
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    opt = proximal(torch.optim.SGD(model.parameters(), lr=1 / lipschitz), penalty, model)
    x_prev, t = [p.detach().clone() for p in model.parameters()], 1.0
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (model(x_t) - y_t).pow(2).mean()).backward()  # sklearn's 1/(2n) RSS
        opt.step()
        with torch.no_grad():
            x = [p.detach().clone() for p in model.parameters()]
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            for p, new, old in zip(model.parameters(), x, x_prev):
                p.copy_(new + (t - 1) / t_next * (new - old))
            x_prev, t = x, t_next
    return x_prev[0].numpy().ravel(), float(x_prev[1])


@pytest.mark.parametrize("alpha", [1.0, 5.0, 10.0])
def test_proximal_reproduces_sklearn_lasso_with_exact_zeros(diabetes, alpha):
    X, y = diabetes
    ref = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    coef, intercept = _fista(L1.from_sklearn(alpha), X, y)
    assert (ref.coef_ == 0).sum() >= 3  # the alphas were chosen to give zeros
    np.testing.assert_array_equal(coef == 0, ref.coef_ == 0)
    np.testing.assert_allclose(coef, ref.coef_, rtol=0, atol=1e-6)
    assert abs(intercept - ref.intercept_) < 1e-6


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(2.0, 0.5), (5.0, 0.9)])
def test_proximal_reproduces_sklearn_elastic_net_with_exact_zeros(diabetes, alpha, l1_ratio):
    X, y = diabetes
    ref = SkElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, y)
    coef, _ = _fista(ElasticNet.from_sklearn(alpha, l1_ratio), X, y)
    assert (ref.coef_ == 0).any()
    np.testing.assert_array_equal(coef == 0, ref.coef_ == 0)
    np.testing.assert_allclose(coef, ref.coef_, rtol=0, atol=1e-6)


def test_plain_sgd_on_l1_leaves_no_exact_zeros(diabetes):
    X, y = diabetes
    x_t, y_t = torch.tensor(X), torch.tensor(y)[:, None]
    model = nn.Linear(10, 1).double()
    penalty = L1.from_sklearn(10.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        (0.5 * (model(x_t) - y_t).pow(2).mean() + penalty(model)).backward()
        opt.step()
    assert sparsity(model)["overall"] == 0.0
    assert (Lasso(alpha=10.0, tol=1e-12).fit(X, y).coef_ == 0).sum() >= 3


# ---------------------------------------------------------------- the wrapper


def test_proximal_l1_soft_thresholds_with_the_group_lr():
    layer = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -0.05, 0.3]]))
    opt = proximal(torch.optim.SGD(layer.parameters(), lr=0.5), L1(0.2), layer)
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()  # threshold lr * strength = 0.1
    torch.testing.assert_close(layer.weight, torch.tensor([[0.9, 0.0, 0.2]], dtype=torch.float64))


def test_proximal_elastic_net_soft_thresholds_then_scales():
    w0 = torch.tensor([[2.0, -0.5, 0.05, -3.0]], dtype=torch.float64)
    layer = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(w0)
    lr, l1, l2 = 0.1, 1.0, 2.0
    opt = proximal(torch.optim.SGD(layer.parameters(), lr=lr), ElasticNet(l1=l1, l2=l2), layer)
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()
    expected = torch.sign(w0) * torch.clamp(w0.abs() - lr * l1, min=0) / (1 + 2 * lr * l2)
    torch.testing.assert_close(layer.weight, expected, rtol=0, atol=1e-15)


def test_proximal_without_model_uses_matrices_of_the_optimizer():
    model = MLP(4, 2, hidden=(3,)).double()
    opt = proximal(torch.optim.SGD(model.parameters(), lr=1.0), L1(100.0))
    bias = model.out.bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert bool((model.out.weight == 0).all()) and bool((model.hidden[0].linear.weight == 0).all())
    torch.testing.assert_close(model.out.bias, bias)


def test_proximal_forwards_state_dict_zero_grad_and_works_with_schedulers():
    model = _model()
    x, y = _data()
    opt = proximal(torch.optim.Adam(model.parameters(), lr=0.1), L1(1e-3), model)
    assert isinstance(opt, ProximalOptimizer) and opt.param_groups is opt.optimizer.param_groups
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
        sched.step()
    assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    state = opt.state_dict()
    assert state["state"][0]["step"] == 2
    fresh = proximal(torch.optim.Adam(_model().parameters(), lr=0.1), L1(1e-3))
    fresh.load_state_dict(state)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == 2
    # The scheduler may also be given the inner optimizer; the proximal step reads the same lr.
    sched2 = torch.optim.lr_scheduler.StepLR(fresh.optimizer, step_size=1, gamma=0.1)
    fresh.step()  # no grads: the inner step is a no-op, but the scheduler sees it was called
    sched2.step()
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.025 * 0.1)


def test_proximal_rejects_parameters_outside_the_optimizer():
    model = MLP(4, 2, hidden=(3,))
    opt = torch.optim.SGD(model.out.parameters(), lr=0.1)
    with pytest.raises(InvalidParameterError, match="'model' parameter of proximal must be a module whose"):
        proximal(opt, L1(0.1), model)
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter of proximal"):
        proximal("sgd", L1(0.1))  # type: ignore[arg-type]


def test_group_lasso_proximal_zeroes_whole_units():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4).double()
    with torch.no_grad():
        layer.weight[1] *= 0.01
    w0 = layer.weight.detach().clone()
    opt = proximal(torch.optim.SGD(layer.parameters(), lr=1.0), GroupLasso(0.05), layer)
    for p in layer.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    norms = w0.norm(dim=1, keepdim=True)
    expected = w0 * torch.clamp(1 - 0.05 / norms, min=0)
    torch.testing.assert_close(layer.weight, expected)
    assert bool((layer.weight[1] == 0).all()) and bool((layer.weight[0] != 0).all())
    assert sparsity(layer)["overall"] == pytest.approx(0.25)


# ---------------------------------------------------------------- sparsity


def test_sparsity_counts_exact_zeros_per_layer():
    model = MLP(2, 2, hidden=(2,))
    with torch.no_grad():
        model.hidden[0].linear.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        model.out.weight.copy_(torch.tensor([[1e-30, 1.0], [2.0, 3.0]]))
    assert sparsity(model) == {"hidden.0.linear": 0.75, "out": 0.0, "overall": 3 / 8}


def test_sparsity_keys_a_bare_layer_by_its_parameter_name():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 2.0]]))
    assert sparsity(layer) == {"weight": 0.5, "overall": 0.5}
    conv = nn.Conv1d(1, 1, 4)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]))
    assert sparsity(conv) == {"weight": 0.75, "overall": 0.75}


@pytest.mark.parametrize("with_model", [True, False])
def test_proximal_leaves_frozen_parameters_alone(with_model):
    # torch's optimizers skip a tensor with requires_grad=False (a frozen backbone); so must the prox.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.clone()
    opt = proximal(torch.optim.SGD(model.parameters(), lr=0.1), L1(100.0), model if with_model else None)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    assert torch.equal(model[0].weight, frozen)
    assert bool((model[1].weight == 0).all())  # lr * l1 = 10 zeroes every trainable weight


def test_proximal_without_the_model_refuses_a_selector_it_cannot_apply():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(InvalidParameterError) as err:
        proximal(torch.optim.SGD(model.parameters(), lr=0.1), L1(1.0, selector=Selector(exclude="0.*")))
    assert str(err.value) == (
        "The 'model' parameter of proximal must be the model, to apply L1's Selector(exclude=('0.*',)) "
        "(not None). Got None instead."
    )
    # With the model, the selector is honoured: layer 0 is excluded.
    penalty = L1(100.0, selector=Selector(exclude="0.*"))
    opt = proximal(torch.optim.SGD(model.parameters(), lr=0.1), penalty, model)
    before = model[0].weight.clone()
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    torch.testing.assert_close(model[0].weight, before - 0.1 * model[0].weight.grad)  # plain SGD, no prox
    assert bool((model[1].weight == 0).all())


@pytest.mark.parametrize("with_model", [True, False])
def test_proximal_refuses_attached_penalties_when_built_not_at_the_first_step(with_model):
    # Accepted with the model, it raised "'prox_' ... must be not called" at the first step(); without
    # it, the message spoke of "Attached's None" selector.
    from reglab.penalties import Attached, attach

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    attach(model[0], L1(0.1))
    for penalty in (Attached(), L2(0.01) + Attached()):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(InvalidParameterError, match=r"'penalty' parameter of proximal .*act through the "
                                                        r"gradient.*Got .*Attached\(\)\)? instead\.$") as err:
            proximal(opt, penalty, model if with_model else None)
        assert "\n" not in str(err.value)
