import random

import numpy as np
import pytest

from reglab.data import builtin


@pytest.fixture(scope="session")
def mnist1d_run(tmp_path_factory):
    """Generate MNIST-1D once per session into a fresh cache directory; record the global RNG states."""
    cache = tmp_path_factory.mktemp("reglab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGLAB_CACHE_DIR", str(cache))
        random.seed(123)
        np.random.seed(456)
        before = (random.getstate(), np.random.get_state())
        splits = builtin.mnist1d(seed=0)
        after = (random.getstate(), np.random.get_state())
    return {"cache": cache, "splits": splits, "before": before, "after": after}
