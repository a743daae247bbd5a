"""``import reglab``: submodules reachable as attributes, the user's global random stream untouched."""

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    # A fresh interpreter: in this one everything is imported already.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120)
    return done.stdout.strip()


def test_submodules_are_attributes_of_the_package_after_import_reglab():
    """They were while ``import reglab`` imported the core eagerly; lazy loading must not take them away."""
    names = ["penalties", "models", "train", "callbacks", "optim", "layers", "constraints", "conventions"]
    out = _run(f"import reglab\nprint(' '.join(getattr(reglab, n).__name__ for n in {names!r}))")
    assert out.split() == [f"reglab.{n}" for n in names]
    assert _run("import reglab\nprint(reglab.penalties.L2 is reglab.L2)") == "True"


def test_a_missing_attribute_is_still_an_attribute_error():
    import reglab

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        reglab.nope  # noqa: B018
    assert not hasattr(reglab, "__wrapped__")


_PROBE = """
import random
random.seed(0)
{imp}
print(random.random())
"""


@pytest.mark.parametrize("imp", [
    "from reglab.study import Study",
    "from reglab.report import write_report",
    "import reglab.cli.ls",
    "import reglab; reglab.Study",
    # A rich bar started and stopped (while it runs, rich captures stdout).
    "import io, types, reglab; t = types.SimpleNamespace(epochs=1); bar = reglab.ProgressBar('rich', "
    "file=io.StringIO()); bar.on_fit_start(t); bar.on_fit_end(t)",
])
def test_importing_reglab_keeps_pythons_global_random_stream(imp):
    """rich.style draws from ``random`` at import; the study, report and CLI modules and the progress bars
    import rich (through reglab._rich)."""
    assert _run(_PROBE.format(imp=imp)) == _run(_PROBE.format(imp=""))
