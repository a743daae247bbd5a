"""Property-based bad input: mutated study configs and garbage CLI arguments get one line, exit 2,
no traceback, and nothing written."""

from __future__ import annotations

import copy
import math

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from reglab.errors import UserError
from reglab.study.schema import StudyConfig, parse_config

from ._support import TINY, run_cli, write_yaml

GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
PATHS = [("name",), ("dataset",), ("dataset", "name"), ("model", "family"), ("model", "hidden"),
         ("training", "epochs"), ("training", "lr"), ("training", "batch_size"), ("seeds",),
         ("validation", "kind"), ("validation", "folds"), ("search", "method"), ("baseline",),
         ("recipes", "l2", "l2"), ("recipes", "l2"), ("recipes",), ("budget", "eta")]
# Derandomized: CI sees the same 150 cases every run; cases a random draw once found are pinned with @example.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(path: tuple[str, ...], value: object) -> dict:
    config = copy.deepcopy(TINY)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return config


@SETTINGS
@given(path=st.sampled_from(PATHS), value=GARBAGE)
@example(path=("recipes",), value={})  # an empty recipes table: the message must name `recipes`
def test_mutated_configs_fail_with_one_line_naming_the_field(path, value):
    try:
        parse_config(_mutate(path, value))
    except UserError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("config: ")
        assert any(part in msg for part in path), msg
    else:  # a mutation that happens to be valid: it must round-trip as the same config
        assume(False)


@SETTINGS
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10),
       where=st.sampled_from([(), ("training",), ("model",), ("search",)]))
def test_unknown_keys_are_named_with_what_is_allowed(key, where):
    config = copy.deepcopy(TINY)
    node = config
    for k in where:
        node = node.setdefault(k, {})
    model = StudyConfig
    for k in where:
        model = model.model_fields[k].annotation
    assume(key not in model.model_fields)  # an unknown key, not a known one with a wrong value
    node[key] = 1
    try:
        parse_config(config)
    except UserError as exc:
        assert f"unknown key '{'.'.join((*where, key))}'" in str(exc) and "Allowed here:" in str(exc)
    else:
        raise AssertionError(f"unknown key {key!r} at {where} accepted")


@SETTINGS
@given(path=st.sampled_from(PATHS), value=GARBAGE)
def test_rejected_configs_exit_2_and_write_nothing(tmp_path_factory, capsys, path, value):
    config = _mutate(path, value)
    try:
        parse_config(config)
        assume(False)  # only rejected configs here: a valid one would run a study
    except UserError:
        pass
    except Exception:  # noqa: BLE001 - pydantic may not even see it (YAML cannot hold it)
        assume(False)
    if isinstance(value, float) and not math.isfinite(value):
        assume(False)  # yaml.safe_dump writes .nan/.inf; covered by the schema test above
    tmp = tmp_path_factory.mktemp("cli")
    cfg = write_yaml(tmp / "c.yaml", config)
    argv = ["study", str(cfg), "--out", str(tmp / "out"), "--quiet", "--workers", "1"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp / "out").exists()


@SETTINGS
@given(cmd=st.sampled_from(["show", "export", "report", "diagnose", "ls"]),
       junk=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    min_size=1, max_size=20))
@example(cmd="diagnose", junk="\n")  # a newline in a path must not split the one-line error
def test_garbage_paths_to_every_command_are_one_line(tmp_path_factory, capsys, cmd, junk):
    tmp = tmp_path_factory.mktemp("g")
    assume(not junk.startswith("-"))
    code, _, err = run_cli([cmd, str(tmp / junk)], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert list(tmp.iterdir()) == []
