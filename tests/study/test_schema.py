"""The study config schema: defaults, one-line errors with did-you-mean, JSON Schema, YAML and built-ins."""

from __future__ import annotations

import json

import pytest

from reglab.errors import UserError
from reglab.study import config_json_schema, load_config
from reglab.study.builtin import builtin_names
from reglab.study.schema import TECHNIQUES, Recipe, Space, StudyConfig, parse_config


def test_defaults(tiny):
    del tiny["seeds"], tiny["validation"]
    cfg = parse_config(tiny)
    assert cfg.seeds == [0, 1, 2]
    assert (cfg.validation.kind, cfg.validation.folds) == ("kfold", 3)
    assert cfg.recipes["l2"].searched() == ["l2"]
    assert cfg.recipes["none"].fixed() == {}


def test_unknown_top_level_key_suggests_nearest(tiny):
    tiny["reciepes"] = tiny.pop("recipes")
    with pytest.raises(UserError) as err:
        parse_config(tiny, "s.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("s.yaml: ")
    assert "'reciepes'" in msg and "Did you mean 'recipes'?" in msg


def test_unknown_recipe_key_suggests_technique(tiny):
    tiny["recipes"]["l2"] = {"dropuot": 0.1}
    with pytest.raises(UserError, match=r"unknown key 'recipes\.l2\.dropuot'\. Did you mean 'dropout'\?"):
        parse_config(tiny)


def test_unknown_nested_key_lists_allowed(tiny):
    tiny["training"]["epoch"] = 3
    with pytest.raises(UserError) as err:
        parse_config(tiny)
    assert "training.epoch" in str(err.value) and "Did you mean 'epochs'?" in str(err.value)
    assert "Allowed here: epochs, batch_size" in str(err.value)


def test_out_of_range_value_names_recipe_parameter_and_value(tiny):
    tiny["recipes"]["l2"] = {"dropout": 1.5}
    with pytest.raises(UserError) as err:
        parse_config(tiny)
    assert str(err.value) == (
        "config: recipes.l2: The 'dropout' parameter of recipe 'l2' must be a float in the range "
        "[0, 0.9999923706054688). Got 1.5 instead."
    )


@pytest.mark.parametrize(
    "rate", [0.999995, 1 - 2**-17, {"uniform": [0.5, 0.999995]}, {"grid": [0.1, 0.999999]}]
)
def test_a_dropout_rate_the_population_engine_refuses_is_refused_up_front(tiny, rate):
    """The population engine's masks round rates from 1 - 2**-17 up to 1; a study refuses such a rate at
    validation, naming the recipe (it used to fail the recipe's whole population group, baseline too)."""
    from reglab.population._config import MAX_DROPOUT

    tiny["recipes"]["hi"] = {"dropout": rate}
    with pytest.raises(UserError) as err:
        parse_config(tiny)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("config: recipes.hi: The 'dropout' parameter of recipe 'hi' must be a float in the "
                          f"range [0, {MAX_DROPOUT!r}). Got 0.99999")
    tiny["recipes"]["hi"] = {"dropout": 0.99999}  # just below the bound: accepted
    assert parse_config(tiny).recipes["hi"].fixed() == {"dropout": 0.99999}


def test_bad_type_in_training(tiny):
    tiny["training"]["epochs"] = 0
    expected = r"config: training\.epochs: Input should be greater than or equal to 1\. Got 0 instead\."
    with pytest.raises(UserError, match=expected):
        parse_config(tiny)


def test_space_errors(tiny):
    tiny["recipes"]["l2"] = {"l2": {"loguniform": [1e-2, 1e-4]}}
    with pytest.raises(UserError, match=r"low < high"):
        parse_config(tiny)
    tiny["recipes"]["l2"] = {"l2": {"logunifrom": [1e-4, 1e-2]}}
    with pytest.raises(UserError, match=r"Did you mean 'loguniform'\?"):
        parse_config(tiny)
    tiny["recipes"]["l2"] = {"l2": {"grid": [1e-3, -1.0]}}
    with pytest.raises(UserError, match=r"'l2' parameter of recipe 'l2'.*Got -1.0 instead"):
        parse_config(tiny)


def test_decay_conflicts(tiny):
    tiny["recipes"]["wd"] = {"weight_decay": 0.1, "decoupled_decay": 0.1}
    with pytest.raises(UserError, match=r"recipe 'wd' sets both weight_decay \(coupled\) and decoupled"):
        parse_config(tiny)
    tiny["recipes"]["wd"] = {"weight_decay": 0.1}
    tiny["training"]["optimizer"] = "adamw"
    with pytest.raises(UserError, match=r"AdamW's decay is always decoupled"):
        parse_config(tiny)


def test_baseline_must_be_a_recipe(tiny):
    tiny["baseline"] = "nonee"
    with pytest.raises(UserError, match=r"baseline 'nonee' is not a recipe.*Did you mean 'none'\?"):
        parse_config(tiny)


def test_early_stopping_forms(tiny):
    for given, expected in [(True, 10), (4, 4), ({"patience": 3, "monitor": "val_loss"}, 3)]:
        tiny["recipes"]["es"] = {"early_stopping": given}
        es = parse_config(tiny).recipes["es"].early_stopping
        assert es.patience == expected
    tiny["recipes"]["es"] = {"early_stopping": {"patiense": 3}}
    with pytest.raises(UserError, match=r"Did you mean 'patience'\?"):
        parse_config(tiny)


def test_grid_values_of_ranges():
    assert Space(grid=[1, 2]).values() == [1, 2]
    assert Space(loguniform=(1e-4, 1e-2), points=3).values() == pytest.approx([1e-4, 1e-3, 1e-2])
    assert Space(uniform=(0.0, 0.5), points=3).values() == pytest.approx([0.0, 0.25, 0.5])


def test_every_technique_is_a_recipe_field():
    assert set(TECHNIQUES) <= set(Recipe.model_fields)


def test_json_schema_is_valid_json_and_forbids_extra():
    schema = config_json_schema()
    json.dumps(schema)
    assert schema["title"] == "StudyConfig"
    assert schema["additionalProperties"] is False
    assert {"dataset", "recipes", "seeds"} <= set(schema["properties"])
    assert schema["$defs"]["Recipe"]["additionalProperties"] is False


def test_yaml_file_and_builtins(tmp_path):
    assert {"mnist1d", "digits", "breast_cancer"} <= set(builtin_names())
    for name in builtin_names():
        cfg = load_config(name)
        assert isinstance(cfg, StudyConfig) and cfg.baseline in cfg.recipes
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndataset: {name: wine}\nrecipes:\n  none:\n  l1: {l1: 0.001}\n")
    assert load_config(path).recipes["l1"].l1 == 0.001
    path.write_text("name: s\ndataset: [\n")
    with pytest.raises(UserError, match=r"is not valid YAML"):
        load_config(path)
    with pytest.raises(UserError, match=r"no built-in study of that name\. Did you mean 'mnist1d'\?"):
        load_config("mnist1")


def test_mnist1d_default_study_covers_the_issue_list():
    recipes = load_config("mnist1d").recipes
    used = {k for r in recipes.values() for k in [*r.fixed(), *r.searched()]}
    assert {"l1", "l2", "elastic_net", "decoupled_decay", "dropout", "norm", "augment", "label_smoothing",
            "max_norm", "early_stopping", "width"} <= used
    assert recipes["early_stopping"].early_stopping.monitor == "val_accuracy"
    assert {r.dropout for r in recipes.values()} >= {0.2, 0.5}


def test_config_that_is_not_utf8_is_a_user_error(tmp_path):
    from reglab.study import Study

    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: s\ndescription: caf\u00e9\n".encode("latin-1"))
    for load in (load_config, Study.from_yaml):
        with pytest.raises(UserError) as err:
            load(path)
        assert str(err.value).startswith(f"{path}: line 2 is not UTF-8 text (byte 0xe9 at offset 24)")
    path.write_bytes("\ufeffname: s\ndataset: {name: wine}\nrecipes: {none: {}}\n".encode())  # a BOM is fine
    assert load_config(path).name == "s"


@pytest.mark.parametrize(("seeds", "message"), [
    ([-1], r"seeds\.0: Input should be greater than or equal to 0\. Got -1 instead\."),
    ([0, 2**62 + 1], r"seeds\.1: Input should be less than or equal to 4611686018427387904\. "
                     r"Got 4611686018427387905 instead\."),
    ([99999999999999999999], r"seeds\.0: Input should be less than or equal to 4611686018427387904"),
])
def test_seeds_are_bounded_to_what_storage_and_torch_take(tiny, seeds, message):
    tiny["seeds"] = seeds
    with pytest.raises(UserError, match=message):
        parse_config(tiny)
    tiny["seeds"] = [0, 2**62]
    assert parse_config(tiny).seeds == [0, 2**62]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused(tiny, value):
    tiny["training"]["lr"] = value
    with pytest.raises(UserError, match=r"training\.lr: Input should be a finite number\. Got"):
        parse_config(tiny)
    tiny["training"]["lr"] = 0.01
    for key in ("l1", "l2", "weight_decay", "gaussian_noise", "lr", "mixup", "max_norm", "dropout"):
        tiny["recipes"]["r"] = {key: value}
        with pytest.raises(UserError, match=rf"The '{key}' parameter of recipe 'r' must be a float"):
            parse_config(tiny)
        tiny["recipes"]["r"] = {key: {"uniform": [0.0, value]}}
        with pytest.raises(UserError):
            parse_config(tiny)
    del tiny["recipes"]["r"]
    for section, key in (("training", "momentum"), ("dataset", "val_size"), ("dataset", "test_size")):
        tiny[section] = {**tiny[section], key: value}
        with pytest.raises(UserError, match=rf"{section}\.{key}: "):
            parse_config(tiny)
        del tiny[section][key]


def test_split_seed_is_bounded(tiny):
    tiny["dataset"]["split_seed"] = -1
    with pytest.raises(UserError, match=r"dataset\.split_seed: Input should be greater than or equal to 0"):
        parse_config(tiny)
    tiny["dataset"]["split_seed"] = 2**32
    with pytest.raises(UserError, match=r"split_seed: Input should be less than or equal to 4294967295"):
        parse_config(tiny)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("training", "epochs", True), ("training", "lr", False), (None, "seeds", [0, True]),
    ("validation", "folds", True),
])
def test_yaml_booleans_are_not_numbers(tiny, section, key, value):
    """pydantic's lax mode would read `epochs: true` as 1 epoch."""
    (tiny.setdefault(section, {}) if section else tiny)[key] = value
    where = f"{section}.{key}" if section else key
    with pytest.raises(UserError, match=rf"{where}: Input should be a number, not true / false"):
        parse_config(tiny)


def test_fields_that_take_booleans_still_do(tiny):
    tiny["recipes"]["es"] = {"early_stopping": {"patience": 3, "restore_best": False}}
    assert parse_config(tiny).recipes["es"].early_stopping.restore_best is False


@pytest.mark.parametrize(
    "model,message",
    [
        ({"family": "cnn2d", "channels": [4]}, "model: channels: cnn2d takes two ints >= 1 (its two"),
        ({"family": "cnn2d", "channels": 8}, "cnn2d takes two ints >= 1"),
        ({"family": "cnn2d", "channels": [-1, 4]}, "got [-1, 4]"),
        ({"family": "cnn1d", "channels": [0, 4]}, "model: channels: cnn1d takes one int >= 1"),
        ({"family": "cnn1d", "hidden": [4]}, "model: 'hidden' applies to family 'mlp', not 'cnn1d'"),
        ({"family": "mlp", "channels": 4}, "model: 'channels' applies to families 'cnn1d' and 'cnn2d'"),
    ],
)
def test_model_settings_the_family_would_ignore_or_misread_are_refused(model, message):
    base = {"name": "t", "dataset": {"name": "wine"}, "recipes": {"none": {}}}
    with pytest.raises(UserError) as err:
        parse_config({**base, "model": model})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_built_in_dataset_takes_no_target():
    with pytest.raises(UserError, match=r"dataset: a built-in dataset \('wine'\) has its own target"):
        parse_config({"name": "t", "dataset": {"name": "wine", "target": "y"}, "recipes": {"none": {}}})


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: t\ndataset: {name: wine}\nrecipes: {none: {}}\nrecipes: {l2: {l2: 0.1}}\n")
    with pytest.raises(UserError, match=r"line 4 is not valid YAML: the key 'recipes' is given twice"):
        load_config(path)
    path.write_text("name: t\ndataset: {name: wine}\nrecipes: {none: {}, l2: {l2: 0.1, l2: 0.2}}\n")
    with pytest.raises(UserError, match=r"the key 'l2' is given twice"):
        load_config(path)
    path.write_text("name: t\ndataset: {name: wine}\nrecipes: {none: {}}\n? [a, b]\n: 1\n")
    with pytest.raises(UserError, match=r"is not valid YAML"):  # an unhashable key: PyYAML's own error
        load_config(path)


def test_yaml_merge_keys_load_as_safe_load_loads_them(tmp_path):
    """An anchor shared with ``<<: *anchor``: a written key overrides a merged one, and merged keys (from
    one or several anchors) never count as given twice; a key written twice still does."""
    import yaml

    text = (
        "name: t\ndataset: {name: wine}\nrecipes:\n  none: {}\n"
        "  es_a: &es {dropout: 0.1, early_stopping: {patience: 3}}\n"
        "  l2_a: &l2 {l2: 0.01, dropout: 0.2}\n"
        "  es_b:\n    <<: *es\n    dropout: 0.3\n"
        "  both:\n    <<: [*es, *l2]\n    l2: 0.05\n"
    )
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config == parse_config(yaml.safe_load(text), str(path))
    assert config.recipes["es_b"].fixed()["dropout"] == 0.3
    assert config.recipes["es_b"].fixed()["early_stopping"]["patience"] == 3
    assert config.recipes["both"].fixed()["l2"] == 0.05  # written: overrides l2_a's merged 0.01
    path.write_text(text + "    l2: 0.07\n")
    with pytest.raises(UserError, match=r"line 13 is not valid YAML: the key 'l2' is given twice"):
        load_config(path)


@pytest.mark.parametrize("model", [
    {"family": "cnn2d", "channels": [4, 8]}, {"family": "cnn1d", "channels": 8}, {"family": "cnn1d"},
    {"family": "mlp", "hidden": [4], "residual": True},
])
def test_a_dumped_config_validates_again(model):
    """The database and a verify study re-validate the dumped config, which holds every default."""
    raw = {"name": "t", "dataset": {"name": "digits"}, "model": model, "recipes": {"none": {}}}
    config = parse_config(raw)
    assert StudyConfig.model_validate(config.model_dump()) == config
    assert StudyConfig.model_validate(json.loads(config.canonical_json())) == config


@pytest.mark.parametrize("norm", ["batch", {"choice": ["layer", "batch"]}, {"grid": [None, "batch"]}])
def test_batch_norm_with_batch_size_1_is_refused_naming_both_fields(tiny, norm):
    """Trainer.fit and Population.fit refuse it, but only when the recipe's first trial trains (mid-study)."""
    tiny["training"]["batch_size"] = 1
    tiny["recipes"]["bn"] = {"norm": norm}
    with pytest.raises(UserError) as err:
        parse_config(tiny)
    assert str(err.value) == (
        "config: recipes.bn.norm: 'batch' (BatchNorm) needs training batches of at least 2 examples; got "
        "training.batch_size 1. Use training.batch_size >= 2, or norm 'layer'"
    )
    tiny["recipes"]["bn"] = {"norm": "layer"}
    assert parse_config(tiny).training.batch_size == 1
    tiny["training"]["batch_size"], tiny["recipes"]["bn"] = 2, {"norm": norm}
    assert parse_config(tiny).training.batch_size == 2


def test_numbers_written_with_an_exponent_are_numbers_in_a_yaml_config(tmp_path):
    # YAML 1.2 numbers; PyYAML read 1e-3 as text and the recipe refused it ("Got '1e-3' instead").
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndataset: {name: digits}\ntraining: {lr: 3E-3}\nrecipes:\n  none: {}\n"
                    "  l2: {l2: {grid: [1e-4, 1.0e-3, +2E-2]}, l1: 1e-3, max_norm: 3e0}\n"
                    "  noise: {augment: {name: feature_noise, sigma: 1e-1}}\n")
    cfg = load_config(path)
    assert cfg.training.lr == 0.003
    assert cfg.recipes["l2"].l2.grid == [1e-4, 1e-3, 0.02]
    assert (cfg.recipes["l2"].l1, cfg.recipes["l2"].max_norm) == (0.001, 3.0)
    assert cfg.recipes["noise"].augment == {"name": "feature_noise", "sigma": 0.1}
    path.write_text("name: s\ndataset: {name: digits}\nrecipes: {none: {}, l2: {l2: '1e-3'}}\n")
    with pytest.raises(UserError, match=r"recipes\.l2: .*'l2'.* must be a float"):  # quoted: text
        load_config(path)


@pytest.mark.parametrize(("recipe", "message"), [
    ({"l1_ratio": 0.5, "l1": 0.01},
     r"recipes\.r: l1_ratio \(0\.5\) only acts on elastic_net, which this recipe does not set, so it "
     r"would be ignored; set elastic_net, or remove l1_ratio"),
    ({"proximal": True},
     r"recipes\.r: proximal \(True\) only acts on l1 or elastic_net or group_lasso or l2"),
    ({"dropout_variant": "gaussian"}, r"recipes\.r: dropout_variant \('gaussian'\) only acts on dropout"),
    ({"dropout_variant": {"choice": ["gaussian", "alpha"]}},
     r"dropout_variant \(choice\) only acts on dropout"),
])
def test_a_setting_that_only_shapes_one_the_recipe_does_not_set_is_refused(tiny, recipe, message):
    # Each trained exactly as the recipe without it, silently.
    tiny["recipes"]["r"] = recipe
    with pytest.raises(UserError, match=message):
        parse_config(tiny)


def test_settings_with_what_they_shape_are_accepted(tiny):
    tiny["recipes"].update({"en": {"elastic_net": 0.01, "l1_ratio": {"grid": [0.2, 0.8]}, "proximal": True},
                            "gd": {"dropout": 0.2, "dropout_variant": "gaussian"},
                            "off": {"proximal": False, "dropout_variant": "standard"}})
    assert parse_config(tiny).recipes["en"].searched() == ["l1_ratio"]


@pytest.mark.parametrize("extra", [{"folds": 5}, {"folds": 2}, {"stratified": False}])
def test_a_kfold_setting_with_holdout_validation_is_refused_in_one_line(tiny, tmp_path, extra):
    """`validation: {kind: holdout, folds: 5}` validated on the dataset's own split, ignoring folds."""
    tiny["validation"] = {"kind": "holdout", **extra}
    (key, value), = extra.items()
    expected = (f"s.yaml: validation.{key} ({value!r}) only acts on kind: kfold, and this config sets kind: "
                "holdout (the dataset's own validation split), so it would be ignored; set kind: kfold, or "
                f"remove {key}")
    with pytest.raises(UserError) as err:
        parse_config(tiny, "s.yaml")
    assert str(err.value) == expected
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(tiny))  # JSON is YAML
    with pytest.raises(UserError, match=r"only acts on kind: kfold"):
        load_config(path)
    tiny["validation"]["kind"] = "kfold"
    assert parse_config(tiny).validation.model_dump() == {"kind": "kfold", "folds": 3, "stratified": True,
                                                          **extra}


def test_a_holdout_config_dump_with_its_default_folds_validates_again(tiny):
    tiny["validation"] = {"kind": "holdout"}
    config = parse_config(tiny)
    dumped = config.model_dump(mode="json")
    assert dumped["validation"] == {"kind": "holdout", "folds": 3, "stratified": True}
    assert parse_config(dumped) == config


def test_a_stored_holdout_study_whose_config_holds_the_default_folds_still_resumes_and_reads(tiny, tmp_path):
    """The stored config (canonical_json) carries folds and stratified with their defaults: refusing them
    with holdout must not stop such a study from resuming or being read."""
    from reglab.report.from_study import load_study
    from reglab.study import Study
    from reglab.study.export import export, open_storage

    tiny["validation"] = {"kind": "holdout"}
    tiny["recipes"] = {"none": {}, "l2": {"l2": 1e-3}}
    first = Study(tiny).run(out=tmp_path, progress=False)
    store = open_storage(tmp_path)
    stored, before = store.load_config(), export(store, "csv")
    store.close()
    assert json.loads(stored)["validation"] == {"kind": "holdout", "folds": 3, "stratified": True}
    assert StudyConfig.model_validate_json(stored).validation.kind == "holdout"
    assert parse_config(tiny).same_study(stored)
    again = Study(tiny).run(out=tmp_path, progress=False)  # resume: same config accepted, nothing rerun
    store = open_storage(tmp_path)
    assert export(store, "csv") == before
    store.close()
    assert again["recipes"]["l2"]["test"] == first["recipes"]["l2"]["test"]
    assert load_study(tmp_path, describe=False).config["validation"]["kind"] == "holdout"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_config_file_says_it_is_empty(tmp_path, text):
    """It said "a study config must be a mapping of keys to values; got NoneType"."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: the config is empty; a study config is a mapping of keys to values "
                              "(name, dataset, recipes, ...)")
