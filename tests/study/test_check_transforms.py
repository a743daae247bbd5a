"""A recipe's batch transforms are tried on two training rows before any training (check_params)."""

from __future__ import annotations

import pytest

from reglab.errors import UserError
from reglab.study.execute import check_params
from reglab.study.schema import parse_config


@pytest.fixture
def digits(tiny):
    tiny.update(dataset={"name": "digits"}, model={"family": "cnn2d", "channels": [2, 2]})
    return parse_config(tiny)


def test_image_augmentation_without_shape_stops_the_study_at_once(digits):
    """digits' inputs are flat (N, 64): a crop without shape: [1, 8, 8] fails on every batch, so the study
    refuses it in one line before training instead of running every trial of the recipe to a failure."""
    expected = (r"recipe 'crop': The 'shape' parameter of RandomCrop must be \(C, H, W\) with "
                r"C\*H\*W == 64 for flat inputs\. Got None instead\.")
    with pytest.raises(UserError, match=expected):
        check_params(digits, "crop", {"augment": {"name": "crop", "size": [8, 8], "padding": 1}})
    # the same recipe with the image shape is accepted, as is a chain that ends in mixup
    crop = {"name": "crop", "size": [8, 8], "padding": 1, "shape": [1, 8, 8]}
    check_params(digits, "crop", {"augment": crop, "mixup": 0.2, "label_smoothing": 0.1})


def test_color_jitter_on_standardized_inputs_is_refused_before_training(digits):
    with pytest.raises(UserError, match=r"recipe 'cj': The 'x' parameter of ColorJitter must be images "
                                        r"with values in \[0, 1\]"):
        check_params(digits, "cj", {"augment": {"name": "color_jitter", "brightness": 0.1,
                                                "shape": [1, 8, 8]}})
