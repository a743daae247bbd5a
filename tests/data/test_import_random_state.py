"""Importing reglab.data leaves the user's global random generators as they were."""

import subprocess
import sys

_PROBE = """
import random, numpy as np
random.seed(0); np.random.seed(0)
{imp}
print(random.random(), np.random.random())
"""


def _draws(imp: str) -> str:
    # A fresh interpreter: in this one scikit-learn and rich are already imported.
    done = subprocess.run([sys.executable, "-c", _PROBE.format(imp=imp)], capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout


def test_import_reglab_data_keeps_the_global_random_state():
    expected = _draws("")
    assert _draws("import reglab.data") == expected
    assert _draws("import reglab; reglab.load_data") == expected
