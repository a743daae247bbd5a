"""reglab.selectors: the default rule, overrides, no_weight_decay hooks, errors, weight_norm."""

import gc
import pickle

import pytest
import torch
from torch import nn

from reglab._validation import InvalidParameterError
from reglab.models import CNN1D, MLP
from reglab.selectors import REVALIDATE_EVERY, Selector, invalidate, structure_version, weight_norm


class Tiny(nn.Module):
    """Linear, Conv, Embedding, every kind of norm, a free 2-D parameter and a hook."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.conv = nn.Conv1d(4, 3, 2)
        self.bn = nn.BatchNorm1d(3)
        self.ln = nn.LayerNorm([3, 2])  # a 2-D normalization weight: still never selected by default
        self.gn = nn.GroupNorm(1, 3)
        self.inorm = nn.InstanceNorm1d(3, affine=True)
        self.fc = nn.Linear(6, 2)
        self.pos = nn.Parameter(torch.zeros(1, 6))

    def no_weight_decay(self):
        return {"pos"}


def _names(selector: Selector, module: nn.Module) -> list[str]:
    return [n for n, _ in selector.select(module)]


def test_default_selects_matrices_and_kernels_not_biases_norms_or_hooked_names():
    assert _names(Selector(), Tiny()) == ["emb.weight", "conv.weight", "fc.weight"]


def test_default_on_library_models_with_batch_and_layer_norm():
    assert _names(Selector(), MLP(4, 2, hidden=(3, 3), norm="layer")) == [
        "hidden.0.linear.weight",
        "hidden.1.linear.weight",
        "out.weight",
    ]
    assert _names(Selector(), CNN1D(40, 10, norm="batch")) == [
        "convs.0.weight",
        "convs.1.weight",
        "convs.2.weight",
        "out.weight",
    ]


def test_no_weight_decay_hook_can_be_ignored_and_works_in_submodules_with_patterns():
    assert "pos" in _names(Selector(use_no_weight_decay=False), Tiny())

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = Tiny()
            self.head = nn.Linear(2, 2)

        def no_weight_decay(self):
            return ["body.e*"]  # fnmatch pattern, timm-style

    assert _names(Selector(), Outer()) == ["body.conv.weight", "body.fc.weight", "head.weight"]


def test_type_and_name_overrides():
    tiny = Tiny()
    assert _names(Selector(exclude_types=nn.Embedding), tiny) == ["conv.weight", "fc.weight"]
    assert _names(Selector(exclude=["conv.*", "fc.*"]), tiny) == ["emb.weight"]
    assert _names(Selector(include_types=(nn.Linear,)), tiny) == ["fc.weight", "fc.bias"]
    assert _names(Selector(include_types=nn.BatchNorm1d, exclude="*.bias"), tiny) == ["bn.weight"]
    assert _names(Selector(include="*.bias"), tiny) == ["conv.bias", "bn.bias", "ln.bias", "gn.bias",
                                                         "inorm.bias", "fc.bias"]
    assert _names(Selector(min_ndim=3), tiny) == ["conv.weight"]


def test_shared_parameters_are_selected_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert _names(Selector(), model) == ["0.weight"]


def test_selector_matching_nothing_raises_one_line():
    with pytest.raises(InvalidParameterError) as err:
        Selector(exclude="*").select(nn.Linear(2, 2))
    assert str(err.value) == (
        "The 'module' parameter of Selector must be a module with at least one parameter selected by "
        "Selector(exclude=('*',)) (it matches nothing). Got 'Linear with weight, bias' instead."
    )
    with pytest.raises(InvalidParameterError, match="'module' parameter of Selector"):
        Selector().select(nn.LayerNorm(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"include": 3}, "The 'include' parameter of Selector must be a str or a list of str"),
        ({"exclude": ["a", 1]}, "The 'exclude' parameter of Selector must be a str or a list of str"),
        ({"include_types": int}, "The 'include_types' parameter of Selector must be an nn.Module subclass"),
        ({"exclude_types": "Linear"}, "The 'exclude_types' parameter of Selector must be an nn.Module"),
        ({"min_ndim": -1}, "The 'min_ndim' parameter of Selector must be an int in the range [0, inf)"),
        ({"use_no_weight_decay": 1}, "The 'use_no_weight_decay' parameter of Selector must be a bool"),
    ],
)
def test_bad_arguments_raise_one_format(kwargs, message):
    with pytest.raises(InvalidParameterError) as err:
        Selector(**kwargs)
    assert str(err.value).startswith(message)


def test_select_rejects_non_modules():
    with pytest.raises(InvalidParameterError, match="must be a torch.nn.Module. Got 'Tensor' instead."):
        Selector().select(torch.zeros(2, 2))


def test_describe_counts_tensors_and_parameters():
    model = MLP(40, 10, hidden=(100,))
    selection = Selector().describe(model, label="L2 regularizes")
    assert selection.num_tensors == 2 and selection.num_params == 40 * 100 + 100 * 10
    assert str(selection) == (
        "L2 regularizes 2 tensors, 5,000 parameters: hidden.0.linear.weight, out.weight "
        "(skipped: hidden.0.linear.bias, out.bias)"
    )


def test_weight_norm_is_the_norm_of_the_concatenated_selection():
    torch.manual_seed(0)
    model = MLP(4, 2, hidden=(3,), norm="batch")
    weights = torch.cat([model.hidden[0].linear.weight.flatten(), model.out.weight.flatten()]).detach()
    assert weight_norm(model) == pytest.approx(float(weights.norm()), rel=1e-6)
    assert weight_norm(model, Selector(include="out.*")) == pytest.approx(
        float(torch.cat([model.out.weight.flatten(), model.out.bias]).detach().norm()), rel=1e-6
    )


# ---------------------------------------------------------------- the selection cache


def _walks(selector: Selector, monkeypatch) -> list[int]:
    calls: list[int] = []
    walk = selector._walk
    monkeypatch.setattr(selector, "_walk", lambda module: calls.append(1) or walk(module))
    return calls


def test_selection_is_cached_and_rewalked_every_revalidate_every_calls(monkeypatch):
    model, selector = MLP(4, 2, hidden=(3,)), Selector()
    walks = _walks(selector, monkeypatch)
    first = selector.parameters(model)
    for _ in range(REVALIDATE_EVERY):  # answered from the cache
        assert selector.parameters(model) is first
    assert len(walks) == 1
    selector.parameters(model)  # the safety-net re-walk
    assert len(walks) == 2


def test_replacing_a_layer_or_adding_a_parameter_is_seen_at_once():
    torch.manual_seed(0)
    model, selector = MLP(4, 2, hidden=(3,)), Selector()
    old = selector.parameters(model)
    model.out = nn.Linear(3, 2)  # replace a layer
    assert selector.parameters(model) == (old[0], model.out.weight)
    model.hidden[0].linear.register_parameter("extra", nn.Parameter(torch.ones(2, 2)))
    model.scale = nn.Parameter(torch.ones(3, 3))  # a parameter set as an attribute
    expected = ["scale", "hidden.0.linear.weight", "hidden.0.linear.extra", "out.weight"]
    assert _names(selector, model) == expected
    seq = nn.Sequential(nn.Linear(2, 2))
    assert len(selector.parameters(seq)) == 1
    seq.append(nn.Linear(2, 2))
    assert len(selector.parameters(seq)) == 2


def test_a_penalty_follows_a_replaced_layer():
    from reglab.penalties import L2

    torch.manual_seed(0)
    model, penalty = MLP(4, 2, hidden=(3,)).double(), L2(0.5)
    penalty(model)
    model.out = nn.Linear(3, 2).double()
    with torch.no_grad():
        model.out.weight.fill_(1.0)
    expected = 0.5 * (model.hidden[0].linear.weight.square().sum() + 6.0)
    torch.testing.assert_close(penalty(model), expected)
    penalty.add_grad_(model)
    torch.testing.assert_close(model.out.weight.grad, torch.ones(2, 3, dtype=torch.float64))


def test_removals_are_seen_after_invalidate():
    seq, selector = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), Selector()
    assert len(selector.parameters(seq)) == 2
    del seq[1]  # torch reports no removal: the documented rule asks for invalidate()
    invalidate()
    assert selector.parameters(seq) == (seq[0].weight,)


def test_cache_holds_modules_weakly_and_selectors_pickle():
    selector = Selector(exclude="out.*")
    model = MLP(4, 2, hidden=(3,))
    selector.select(model)
    assert len(selector._cache) == 1
    clone = pickle.loads(pickle.dumps(selector))
    assert _names(clone, model) == ["hidden.0.linear.weight"] and repr(clone) == repr(selector)
    del model
    gc.collect()
    assert len(selector._cache) == 0


def test_structure_version_changes_on_registration():
    before = structure_version()
    nn.Linear(2, 2)
    assert structure_version() > before
    before = structure_version()
    torch.zeros(3).add_(1)
    assert structure_version() == before


def _empty_selection_calls():
    from reglab import L1, L2, ElasticNet, GroupLasso, param_groups, sparsity
    from reglab.constraints import MaxNorm

    sel = Selector(include="nomatch*")
    return [
        ("L1", lambda m: L1(0.1, selector=sel)(m)),
        ("L2", lambda m: L2(0.1, selector=sel).add_grad_(m)),
        ("ElasticNet", lambda m: ElasticNet(0.1, 0.1, selector=sel)(m)),
        ("ElasticNet", lambda m: ElasticNet(0.1, 0.1, selector=sel).describe(m)),
        ("GroupLasso", lambda m: GroupLasso(0.1, selector=sel)(m)),
        ("L1", lambda m: (L1(0.1, selector=sel) + L2(0.1))(m)),
        ("param_groups", lambda m: param_groups(m, weight_decay=0.1, selector=sel)),
        ("sparsity", lambda m: sparsity(m, sel)),
        ("MaxNorm", lambda m: MaxNorm(2.0, selector=sel)(m)),
    ]


@pytest.mark.parametrize("case", range(9))
def test_a_selector_matching_nothing_is_blamed_on_its_owner(case):
    owner, call = _empty_selection_calls()[case]
    with pytest.raises(InvalidParameterError) as err:
        call(nn.Linear(2, 2))
    assert str(err.value) == (
        f"The 'selector' parameter of {owner} must be a Selector that picks at least one parameter of Linear "
        "(it matches nothing among: weight, bias). Got Selector(include=('nomatch*',)) instead."
    )
