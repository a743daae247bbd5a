"""reglab.penalties against the hand-written Keras formulas, autograd and the proximal operators."""

import copy
import math
import pickle

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.models import CNN1D, MLP
from reglab.penalties import L1, L2, Attached, ElasticNet, GroupLasso, Penalty, Sum, attach, attached
from reglab.selectors import Selector


@pytest.fixture
def model() -> MLP:
    torch.manual_seed(0)
    net = MLP(6, 3, hidden=(5, 4), norm="batch").double()
    with torch.no_grad():  # norm parameters away from their (1, 0) init so excluding them matters
        for block in net.hidden:
            block.norm.weight.uniform_(0.5, 2.0)
            block.norm.bias.uniform_(-1.0, 1.0)
    return net


def _weights(net: MLP) -> list[torch.Tensor]:
    return [net.hidden[0].linear.weight, net.hidden[1].linear.weight, net.out.weight]


def _check_value_and_grad(penalty, net, hand):
    value = penalty(net)
    expected = hand(_weights(net))
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    got = torch.autograd.grad(value, list(net.parameters()), allow_unused=True)
    want = torch.autograd.grad(expected, list(net.parameters()), allow_unused=True)
    for g, w, (name, p) in zip(got, want, net.named_parameters()):
        g = torch.zeros_like(p) if g is None else g
        w = torch.zeros_like(p) if w is None else w
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-15, msg=name)
    # Biases and norm parameters get no gradient from the penalty.
    selected = {id(w) for w in _weights(net)}
    assert all(g is None for g, p in zip(got, net.parameters()) if id(p) not in selected)


def test_l1_value_and_gradient_equal_the_keras_formula(model):
    _check_value_and_grad(L1(0.3), model, lambda ws: 0.3 * sum(w.abs().sum() for w in ws))


def test_l2_value_and_gradient_equal_the_keras_formula(model):
    _check_value_and_grad(L2(0.2), model, lambda ws: 0.2 * sum((w**2).sum() for w in ws))


def test_elastic_net_is_l1_plus_l2(model):
    hand = lambda ws: sum(0.1 * w.abs().sum() + 0.7 * (w**2).sum() for w in ws)  # noqa: E731
    _check_value_and_grad(ElasticNet(l1=0.1, l2=0.7), model, hand)
    _check_value_and_grad(L1(0.1) + L2(0.7), model, hand)
    assert isinstance(L1(0.1) + L2(0.7), Sum)


@pytest.mark.parametrize("size_scaled", [False, True])
def test_group_lasso_sums_row_norms(model, size_scaled):
    def hand(ws):
        return 0.4 * sum(
            (math.sqrt(w.shape[1]) if size_scaled else 1.0) * torch.sqrt((w**2).sum(dim=1)).sum() for w in ws
        )

    _check_value_and_grad(GroupLasso(0.4, size_scaled=size_scaled), model, hand)


def test_group_lasso_groups_conv_output_channels():
    torch.manual_seed(0)
    net = CNN1D(40, 10, channels=4).double()
    w = net.convs[1].weight  # (out, in, k)
    value = GroupLasso(1.0, selector=Selector(include="convs.1.weight"))(net)
    expected = sum(torch.sqrt((w[i] ** 2).sum()) for i in range(w.shape[0]))
    torch.testing.assert_close(value, expected)


def test_sum_of_penalties_with_different_selections(model):
    p = L1(0.5, selector=Selector(include="out.weight")) + L2(0.25)
    expected = 0.5 * model.out.weight.abs().sum() + 0.25 * sum((w**2).sum() for w in _weights(model))
    torch.testing.assert_close(p(model), expected)
    assert sum([L1(0.5), L2(0.25)]).terms[1].strength == 0.25


def test_penalty_value_dtype_follows_the_model(model):
    assert L1(0.1)(model).dtype == torch.float64
    assert L2(0.1)(MLP(2, 2, hidden=(2,))).dtype == torch.float32


# ---------------------------------------------------------------- proximal operators


def test_l1_prox_is_soft_thresholding():
    w = torch.tensor([-2.0, -0.1, 0.0, 0.05, 1.5], dtype=torch.float64)
    L1(0.5).prox_(w, lr=0.2)
    torch.testing.assert_close(w, torch.tensor([-1.9, 0.0, 0.0, 0.0, 1.4], dtype=torch.float64))
    assert (w == 0).sum() == 3


def test_l2_prox_is_the_keras_scaling():
    w = torch.tensor([2.0, -4.0], dtype=torch.float64)
    L2(0.5).prox_(w, lr=0.1)  # w / (1 + 2 * 0.1 * 0.5)
    torch.testing.assert_close(w, torch.tensor([2.0, -4.0], dtype=torch.float64) / 1.1)


def test_prox_is_the_argmin_of_the_proximal_objective():
    """prox(v) = argmin_w lr*penalty(w) + 0.5||w - v||²: no random perturbation does better."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64)
    for penalty in (L1(0.7), L2(0.7), ElasticNet(l1=0.4, l2=0.9), GroupLasso(1.5), L1(0.3) + GroupLasso(0.8)):
        w = penalty.prox_(v.clone(), 0.5)

        def objective(x, penalty=penalty):
            return float(0.5 * penalty.value([x]) + 0.5 * ((x - v) ** 2).sum())

        best = objective(w)
        for _ in range(200):
            assert objective(w + 1e-3 * torch.randn(4, 3, generator=g, dtype=torch.float64)) >= best - 1e-12


def test_group_lasso_prox_zeroes_small_rows_and_shrinks_others():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=torch.float64)
    GroupLasso(1.0).prox_(w, lr=1.0)
    torch.testing.assert_close(w, torch.tensor([[2.4, 3.2], [0.0, 0.0]], dtype=torch.float64))
    zero = torch.zeros(2, 2, dtype=torch.float64)
    GroupLasso(1.0).prox_(zero, lr=1.0)
    assert not zero.isnan().any()


# ---------------------------------------------------------------- attach (Keras kernel_regularizer)


def test_attach_applies_to_one_layer_and_sums_over_the_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert attached(net).item() == 0.0
    attach(net[0], L2(0.1))
    attach(net[2], L1(0.2))
    attach(net[2], L2(0.3))
    expected = 0.1 * (net[0].weight ** 2).sum() + 0.2 * net[2].weight.abs().sum() + 0.3 * (
        net[2].weight ** 2
    ).sum()
    torch.testing.assert_close(attached(net), expected)
    torch.testing.assert_close(attached(copy.deepcopy(net)), expected)


def test_attach_rejects_layers_without_selectable_weights_and_non_penalties():
    with pytest.raises(InvalidParameterError) as err:
        attach(nn.BatchNorm1d(3), L2(0.1))
    assert str(err.value) == (
        "The 'layer' parameter of attach must be a layer with a parameter that L2's Selector() picks. "
        "Got 'BatchNorm1d with weight, bias' instead."
    )
    with pytest.raises(InvalidParameterError, match="'penalty' parameter of attach must be a reglab penalty"):
        attach(nn.Linear(2, 2), 0.1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- validation and description


@pytest.mark.parametrize("cls", [L1, L2, GroupLasso])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1e-3", True])
def test_strength_validation(cls, bad):
    with pytest.raises(InvalidParameterError) as err:
        cls(bad)
    assert str(err.value) == (
        f"The 'strength' parameter of {cls.__name__} must be a float in the range [0, inf). "
        f"Got {bad!r} instead."
    )


def test_elastic_net_validation_names_the_argument():
    with pytest.raises(InvalidParameterError) as err:
        ElasticNet(l1=0.1, l2=-2)
    assert str(err.value) == (
        "The 'l2' parameter of ElasticNet must be a float in the range [0, inf). Got -2.0 instead."
    )
    with pytest.raises(InvalidParameterError, match="'selector' parameter of L1 must be a reglab.Selector"):
        L1(0.1, selector="weights")  # type: ignore[arg-type]


def test_describe_reports_the_selection(model):
    text = str(L2(1e-4).describe(model))
    assert text.startswith(
        "L2 regularizes 3 tensors, 62 parameters: hidden.0.linear.weight, hidden.1.linear.weight, out.weight"
    )
    described = str(ElasticNet(l1=1.0).describe(model))
    assert described.startswith("ElasticNet regularizes 3 tensors, 62 parameters")


# ---------------------------------------------------------------- gradient path (add_grad_) vs autograd


class Cubic(Penalty):
    """A penalty with no hand-written gradient: add_grad_ falls back to autograd."""

    def __init__(self, strength):
        self.strength, self.selector = strength, Selector()

    def value(self, target):
        params = self.selector.parameters(target) if isinstance(target, nn.Module) else target
        return self.strength * sum(p.abs().pow(3).sum() for p in params)


def _with_zeros(net: MLP) -> MLP:
    with torch.no_grad():  # sign(0) and zero groups: where autograd's conventions matter
        net.hidden[0].linear.weight[1].zero_()
        net.out.weight[0, 2] = 0.0
    return net


def _data_loss(net: MLP) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g)
    return nn.functional.cross_entropy(net(x), y)


def _grads_both_ways(net, penalty):
    net.zero_grad(set_to_none=True)
    (_data_loss(net) + penalty(net)).backward()
    autograd = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    _data_loss(net).backward()
    penalty.add_grad_(net)
    return autograd, {n: p.grad for n, p in net.named_parameters()}


GRADIENT_CASES = {
    "L1": lambda: L1(0.3),
    "L2": lambda: L2(0.2),
    "ElasticNet with l2 = 0": lambda: ElasticNet(l1=0.1, l2=0.0),
    "ElasticNet with l1 = 0": lambda: ElasticNet(l1=0.0, l2=0.7),
    "ElasticNet inside a Sum": lambda: (
        ElasticNet(l1=0.1, l2=0.7) + L1(0.2, selector=Selector(include="*.bias"))
    ),
    "GroupLasso": lambda: GroupLasso(0.4),
    "GroupLasso size-scaled": lambda: GroupLasso(0.4, size_scaled=True),
    "Sum, overlapping selections": lambda: L1(0.5, selector=Selector(include="out.weight")) + L2(0.25),
    "Sum, L1 + GroupLasso": lambda: L1(0.3) + GroupLasso(0.2),
    "Sum with biases": lambda: L2(0.1) + L1(0.2, selector=Selector(include="*.bias")),
}


@pytest.mark.parametrize("case", list(GRADIENT_CASES))
def test_add_grad_equals_autograd_of_the_penalty_bit_for_bit(model, case):
    autograd, ours = _grads_both_ways(_with_zeros(model), GRADIENT_CASES[case]())
    for name, want in autograd.items():
        assert want is not None and torch.equal(ours[name], want), name


def test_elastic_net_add_grad_is_autograds_sum_to_a_few_ulps(model):
    # Its fused path rounds grad + l1·sign(w) where autograd rounds l1·sign(w) + 2·l2·w: the two
    # differ by at most a couple of ulps of the largest term, and are otherwise the same gradient.
    net = _with_zeros(model)
    penalty = ElasticNet(l1=0.1, l2=0.7)
    net.zero_grad(set_to_none=True)
    _data_loss(net).backward()
    data = {n: p.grad.clone() for n, p in net.named_parameters()}
    autograd, ours = _grads_both_ways(net, penalty)
    selected = {n for n, _ in penalty.selector.select(net)}
    differ = 0
    for name, p in net.named_parameters():
        if name not in selected:
            assert torch.equal(ours[name], autograd[name]), name
            continue
        terms = data[name].abs() + 0.1 + 2 * 0.7 * p.detach().abs()
        bound = 4 * torch.finfo(p.dtype).eps * terms
        assert bool(((ours[name] - autograd[name]).abs() <= bound).all()), name
        exact = 0.1 * torch.sign(p.detach()) + 2 * 0.7 * p.detach() + data[name]
        torch.testing.assert_close(ours[name], exact, rtol=1e-14, atol=1e-14)
        differ += int((ours[name] != autograd[name]).sum())
        zero = p.detach() == 0
        assert torch.equal(ours[name][zero], data[name][zero]), name  # sign(0) = 0: no L1 pull at 0
    assert selected and differ < sum(p.numel() for n, p in net.named_parameters() if n in selected)


def test_elastic_net_add_grad_sets_a_missing_grad_as_autograd_would(model):
    net = _with_zeros(model)
    penalty = ElasticNet(l1=0.1, l2=0.7)
    net.zero_grad(set_to_none=True)
    penalty(net).backward()
    want = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    penalty.add_grad_(net)
    assert want and all(torch.equal(p.grad, want[n]) for n, p in net.named_parameters() if n in want)


@pytest.mark.parametrize("case", list(GRADIENT_CASES) + ["ElasticNet", "Cubic (autograd fallback)"])
def test_add_grad_returns_the_penalty_value_and_the_same_gradients(model, case):
    cases = {
        **GRADIENT_CASES,
        "ElasticNet": lambda: ElasticNet(l1=0.1, l2=0.7),
        "Cubic (autograd fallback)": lambda: Cubic(0.3),
    }
    penalty = cases[case]()
    net = _with_zeros(model)
    _, plain = _grads_both_ways(net, penalty)
    plain = {n: g.clone() for n, g in plain.items()}
    net.zero_grad(set_to_none=True)
    _data_loss(net).backward()
    value = penalty.add_grad_(net, return_value=True)
    assert not value.requires_grad and value.shape == ()
    # Same sum, other order (L1's from its signs: sum of w * sign(w)): equal to rounding.
    torch.testing.assert_close(value, penalty(net).detach(), rtol=1e-14, atol=0)
    for name, p in net.named_parameters():
        assert torch.equal(p.grad, plain[name]), name  # the value costs the gradient nothing


def test_add_grad_value_of_attached_penalties_and_of_none(model):
    assert Attached().add_grad_(model, return_value=True).item() == 0.0  # nothing attached: a zero
    attach(model.out, L1(0.2))
    attach(model.hidden[0].linear, L2(0.1))
    total = ElasticNet(l1=0.05, l2=0.01) + Attached()
    _data_loss(model).backward()
    value = total.add_grad_(model, return_value=True)
    torch.testing.assert_close(value, total(model).detach(), rtol=1e-14, atol=0)


def test_add_grad_of_attached_penalties_and_of_a_penalty_plus_attached(model):
    _with_zeros(model)
    attach(model.hidden[0].linear, L2(0.1))
    attach(model.out, L1(0.2))
    attach(model.out, GroupLasso(0.3))  # two attachments on one layer: their terms are summed first
    for penalty in (Attached(), ElasticNet(l1=0.05, l2=0.01) + Attached()):
        autograd, ours = _grads_both_ways(model, penalty)
        for name, want in autograd.items():
            torch.testing.assert_close(ours[name], want, rtol=1e-15, atol=0, msg=name)
    torch.testing.assert_close(Attached()(model), attached(model), rtol=0, atol=0)


def test_add_grad_falls_back_to_autograd_for_custom_penalties(model):
    autograd, ours = _grads_both_ways(model, Cubic(0.3))
    for name, want in autograd.items():
        torch.testing.assert_close(ours[name], want, rtol=1e-15, atol=0, msg=name)


def test_add_grad_sets_missing_grads_and_skips_frozen_parameters(model):
    model.hidden[1].linear.weight.requires_grad_(False)
    model.zero_grad(set_to_none=True)
    L2(0.5).add_grad_(model)  # no backward before: .grad is None, as after zero_grad(set_to_none=True)
    torch.testing.assert_close(model.out.weight.grad, 2 * 0.5 * model.out.weight.detach(), rtol=0, atol=0)
    assert model.hidden[1].linear.weight.grad is None  # autograd gives a frozen weight no gradient
    assert model.out.bias.grad is None


def test_value_of_a_module_is_the_penalty_and_logs_without_a_graph(model):
    for penalty in (L1(0.3), L2(0.2), ElasticNet(l1=0.1, l2=0.7), GroupLasso(0.4)):
        with torch.no_grad():
            logged = penalty.value(model)
        assert logged.grad_fn is None
        torch.testing.assert_close(logged, penalty(model).detach(), rtol=0, atol=0)
        torch.testing.assert_close(penalty.value(_weights(model)), penalty(model), rtol=0, atol=0)


def test_attached_value_rejects_tensors_and_attached_cannot_be_attached():
    with pytest.raises(InvalidParameterError, match="'target' parameter of Attached.value"):
        Attached().value([torch.zeros(2)])
    with pytest.raises(InvalidParameterError, match="'penalty' parameter of attach"):
        attach(nn.Linear(2, 2), Attached())


def test_attachments_are_found_again_after_a_layer_is_replaced():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    attach(net[0], L2(0.1))
    assert [type(p).__name__ for _, p in Attached().pairs(net)] == ["L2"]
    net[2] = attach(nn.Linear(4, 2), L1(0.2))  # a registration: seen at once
    assert [(sub, type(p).__name__) for sub, p in Attached().pairs(net)] == [(net[0], "L2"), (net[2], "L1")]


def test_penalties_pickle_after_use(model):
    penalty = ElasticNet(l1=0.1, l2=0.2)
    before = penalty(model)
    clone = pickle.loads(pickle.dumps(penalty))
    torch.testing.assert_close(clone(model), before)
    torch.testing.assert_close(copy.deepcopy(penalty)(model), before)


def test_l1_and_l2_from_keras_follow_the_keras_formula_and_round_trip():
    """The conventions table names to_keras() for Keras L1(l1) / L2(l2); only ElasticNet had it."""
    layer = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
    w = layer.weight.detach()
    # Keras: L1(l1)(w) = l1 * sum(|w|); L2(l2)(w) = l2 * sum(w**2), no 1/2.
    assert L1.from_keras(0.01).value(layer).item() == pytest.approx(0.01 * float(w.abs().sum()))
    assert L2.from_keras(0.02).value(layer).item() == pytest.approx(0.02 * float(w.square().sum()))
    assert L1.from_keras(0.01).to_keras() == {"l1": 0.01} and L2.from_keras(0.02).to_keras() == {"l2": 0.02}
    with pytest.raises(ValueError, match="'l2' parameter of from_keras"):
        L2.from_keras(-1.0)


@pytest.mark.parametrize(
    "penalty", [L1(0.3), L2(0.2), ElasticNet(l1=0.1, l2=0.7), GroupLasso(0.4)], ids=repr
)
def test_add_grad_on_a_sparse_embedding_gradient_is_autograds_dense_sum(penalty):
    # Embedding(sparse=True) leaves a sparse .grad; autograd adds the penalty's dense gradient to it.
    torch.manual_seed(0)
    emb = nn.Embedding(10, 4, sparse=True).double()
    ids = torch.tensor([1, 2, 2])
    (emb(ids).sum() + penalty(emb)).backward()
    want = emb.weight.grad.clone()
    emb.zero_grad(set_to_none=True)
    emb(ids).sum().backward()
    assert emb.weight.grad.layout == torch.sparse_coo
    penalty.add_grad_(emb)
    assert emb.weight.grad.layout == torch.strided
    torch.testing.assert_close(emb.weight.grad, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("penalty", "hand"),
    [(L1(1e-4), lambda w: 1e-4 * w.abs().sum()), (L2(1e-4), lambda w: 1e-4 * w.square().sum()),
     (GroupLasso(1e-4), lambda w: 1e-4 * w.norm(dim=1).sum()),
     (ElasticNet(l1=1e-4, l2=1e-4), lambda w: 1e-4 * w.abs().sum() + 1e-4 * w.square().sum())],
    ids=["L1", "L2", "GroupLasso", "ElasticNet"],
)
def test_half_precision_values_are_the_float64_value_rounded_once(penalty, hand, dtype):
    # The sums ran in float16: past 65504 they were inf, so L2(1e-4) of this 300 x 300 weight (9.01) was
    # inf, for the History and for a loss holding it.
    torch.manual_seed(0)
    layer = nn.Linear(300, 300, bias=False).to(dtype)
    with torch.no_grad():
        layer.weight.normal_()
    want = hand(layer.weight.detach().double())
    layer(torch.ones(1, 300, dtype=dtype)).sum().backward()
    for got in (penalty(layer), penalty.value([layer.weight]), penalty.add_grad_(layer, return_value=True)):
        assert got.dtype == dtype
        # Rounded once to the dtype, plus float32 summation error (far under a float16 / bfloat16 ulp).
        torch.testing.assert_close(got.double(), want, rtol=2 * torch.finfo(dtype).eps, atol=0)


def test_group_lasso_groups_a_transposed_convolution_by_input_channel_as_documented():
    layer = nn.ConvTranspose1d(3, 4, kernel_size=2, bias=False)  # weight (in=3, out=4, k=2)
    w = layer.weight.detach()
    by_input = sum(float(w[i].norm()) for i in range(3))
    assert float(GroupLasso(1.0)(layer).detach()) == pytest.approx(by_input, rel=1e-6)
    by_output = sum(float(w[:, j].norm()) for j in range(4))
    assert abs(by_input - by_output) > 1e-3
