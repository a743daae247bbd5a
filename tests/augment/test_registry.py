import importlib

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import Compose, RandomShift, TimeMask, available, from_config, make


def test_make_by_name_builds_the_same_transform():
    t = make("signal_shift", max_shift=4, circular=False)
    assert isinstance(t, RandomShift) and (t.max_shift, t.circular) == (4, False)
    x = torch.randn(10, 16, generator=torch.Generator().manual_seed(0))
    a, _ = t(x, None, generator=torch.Generator().manual_seed(1))
    b, _ = RandomShift(4, circular=False)(x, None, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_every_available_name_is_constructible_with_defaults_or_required_args():
    required = {
        "crop": {"size": (8, 8)},
        "resized_crop": {"size": (8, 8)},
        "signal_shift": {"max_shift": 2},
        "time_mask": {"max_width": 2},
        "synonym_replacement": {"synonyms": {"a": ["b"]}},
        "back_translation": {"translate": lambda batch: batch},
        "mixup": {"alpha": 0.2, "num_classes": 3},
    }
    for name in available():
        assert callable(make(name, **required.get(name, {})))


def test_from_config_list_is_compose():
    t = from_config([{"name": "signal_shift", "max_shift": 4}, {"name": "time_mask", "max_width": 3}])
    assert isinstance(t, Compose) and isinstance(t.transforms[1], TimeMask)


def test_registry_errors():
    with pytest.raises(InvalidParameterError) as err:
        make("signal_shfit")
    assert "Got 'signal_shfit' instead. Did you mean 'signal_shift'?" in str(err.value)
    assert str(err.value).startswith("The 'name' parameter of reglab.augment.make must be one of 'hflip', ")
    expected = "'signal_shift' does not take the keyword 'max_shfit'.*Did you mean 'max_shift'"
    with pytest.raises(InvalidParameterError, match=expected):
        make("signal_shift", max_shfit=3)
    expected = "'spec' parameter of from_config must be a dict with a 'name' key"
    with pytest.raises(InvalidParameterError, match=expected):
        from_config({"max_shift": 3})


def test_mixup_comes_from_reglab_targets_when_it_exists():
    try:
        mixup_cls = importlib.import_module("reglab.targets").Mixup
    except (ImportError, AttributeError):
        assert "mixup" not in available()
        with pytest.raises(InvalidParameterError, match="must be one of"):
            make("mixup")
    else:
        t = make("mixup", alpha=0.4, num_classes=3)
        assert "mixup" in available() and type(t) is mixup_cls
        labels = torch.tensor([0, 1, 2, 0, 1, 2])
        x, y = t(torch.randn(6, 4), labels, generator=torch.Generator().manual_seed(0))
        assert y.shape == (6, 3) and torch.allclose(y.sum(1), torch.ones(6))
        with pytest.raises(InvalidParameterError, match="The augmentation 'mixup' needs the keyword 'alpha'"):
            make("mixup")


def test_check_raises_what_make_would_without_building():
    from reglab.augment.registry import check

    check("signal_shift", {"max_shift": 4})  # nothing to say
    for name, keywords in (("signal_shfit", {}), ("signal_shift", {"max_shfit": 3}), ("signal_shift", {})):
        with pytest.raises(InvalidParameterError) as made:
            make(name, **keywords)
        with pytest.raises(InvalidParameterError) as checked:
            check(name, keywords)
        assert str(checked.value) == str(made.value)
    check("signal_shift", {}, complete=False)  # only what is given is checked: max_shift may come later
    with pytest.raises(InvalidParameterError, match=r"does not take the keyword 'max_shfit'"):
        check("signal_shift", {"max_shfit": 3}, complete=False)
