"""Strict JSON (RFC 8259) that reads back exactly, NaN and infinities included.

Python's ``json`` writes ``NaN`` / ``Infinity``, which JavaScript, ``jq`` and strict parsers
reject. Histories (``History.to_json``), the study database and its exports use these instead.
No library writes JSON that both stays strict and restores non-finite numbers, so this is by hand.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["NONFINITE_KEY", "strict_json", "dumps_exact", "loads_exact"]

NONFINITE_KEY = "$nonfinite"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def strict_json(value: Any) -> str:
    """Sorted JSON that any parser reads (RFC 8259): NaN and infinities become ``null``.

    Python's ``json`` writes ``NaN``/``Infinity``, which JavaScript, ``jq`` and strict parsers reject.

    Example:
        >>> strict_json({"b": float("nan"), "a": [1.5, float("inf")]})
        '{"a": [1.5, null], "b": null}'
    """
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps_exact(value: dict[str, Any], *, indent: int | None = None, sort_keys: bool = True) -> str:
    """Strict JSON of a dict (keys sorted unless ``sort_keys=False``) that :func:`loads_exact` reads back
    exactly, NaN and infinities included.

    A non-finite number is ``null`` in place (what any JSON reader expects) and its JSON Pointer
    (RFC 6901) is listed under ``"$nonfinite"`` with ``"nan"``, ``"inf"`` or ``"-inf"``.

    Example:
        >>> dumps_exact({"loss": float("nan"), "lr": 0.1})
        '{"$nonfinite": {"/loss": "nan"}, "loss": null, "lr": 0.1}'
        >>> loads_exact(dumps_exact({"a": [1.0, float("-inf")]}))
        {'a': [1.0, -inf]}
    """
    marks: dict[str, str] = {}
    plain = _nulled(value, "", marks)
    if marks:
        plain[NONFINITE_KEY] = marks
    return json.dumps(plain, sort_keys=sort_keys, indent=indent, allow_nan=False)


def _nulled(value: Any, path: str, marks: dict[str, str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        marks[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {k: _nulled(v, f"{path}/{str(k).replace('~', '~0').replace('/', '~1')}", marks)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v, f"{path}/{i}", marks) for i, v in enumerate(value)]
    return value


def loads_exact(text: str) -> Any:
    """Read what :func:`dumps_exact` wrote (and the ``NaN`` tokens older databases hold)."""
    value = json.loads(text)
    marks = value.pop(NONFINITE_KEY, None) if isinstance(value, dict) else None
    for pointer, kind in (marks or {}).items():
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        node = value
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = _NONFINITE[kind]
        else:
            node[last] = _NONFINITE[kind]
    return value
