"""Fixtures of the reliability suite (helpers live in ``_support``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ._support import TINY


@pytest.fixture
def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY)
