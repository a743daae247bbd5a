"""The schema checks a recipe's augmentation names and keywords, naming recipes.<name>.augment."""

from __future__ import annotations

import pytest

from reglab.augment import available
from reglab.errors import UserError
from reglab.study import load_config
from reglab.study.execute import check_params
from reglab.study.schema import parse_config


def _message(tiny, augment, source="config"):
    tiny["recipes"]["aug"] = {"augment": augment}
    with pytest.raises(UserError) as err:
        parse_config(tiny, source)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_misspelt_augmentation_in_a_yaml_file_names_its_place(tiny, tmp_path):
    import yaml

    tiny["recipes"]["aug"] = {"augment": "feature_nois"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny))
    with pytest.raises(UserError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: recipes.aug.augment: unknown augmentation 'feature_nois'. Did you mean 'feature_noise'? "
        f"Allowed here: {', '.join(available())} (reglab.augment.available())."
    )


@pytest.mark.parametrize("augment", [
    {"name": "tim_mask", "max_width": 2},
    [{"name": "time_mask", "max_width": 2}, "tim_mask"],
    {"choice": ["feature_noise", "tim_mask"]},
    {"grid": [["feature_noise", {"name": "tim_mask"}]]},
])
def test_a_misspelt_name_in_a_mapping_a_list_or_a_search_space_names_its_place_too(tiny, augment):
    assert _message(tiny, augment).startswith(
        "config: recipes.aug.augment: unknown augmentation 'tim_mask'. Did you mean 'time_mask'? Allowed "
    )


def test_a_misspelt_keyword_names_its_place_and_the_keywords_taken(tiny):
    assert _message(tiny, {"name": "time_mask", "max_widht": 2}) == (
        "config: recipes.aug.augment: The augmentation 'time_mask' does not take the keyword 'max_widht'; it "
        "takes 'max_width', 'value'. Did you mean 'max_width'?"
    )


def test_good_augmentations_pass_and_other_shapes_keep_their_message(tiny):
    tiny["recipes"]["aug"] = {"augment": [{"name": "feature_noise", "sigma": 0.1}, "feature_dropout"]}
    assert parse_config(tiny).recipes["aug"].fixed()["augment"] == [
        {"name": "feature_noise", "sigma": 0.1}, {"name": "feature_dropout"}]
    assert _message(tiny, 3) == (
        "config: recipes.aug: The 'augment' parameter of recipe 'aug' must be an augmentation name, a "
        "mapping with a 'name' key, or a list of them. Got 3 instead."
    )


def test_a_missing_keyword_is_left_to_the_recipe_check_that_builds_the_transform(tiny):
    """The schema checks names and keywords; building (a missing keyword, a bad value) is check_params's."""
    tiny["recipes"]["aug"] = {"augment": "time_mask"}
    config = parse_config(tiny)
    with pytest.raises(UserError, match=r"^recipe 'aug': The augmentation 'time_mask' needs the keyword"):
        check_params(config, "aug", config.recipes["aug"].fixed())
