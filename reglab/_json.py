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
    """Read what :func:`dumps_exact` wrote (and the ``NaN`` tokens older databases hold).

    Raises:
        json.JSONDecodeError: ``text`` is not JSON.
        ValueError: the ``"$nonfinite"`` block is malformed: not an object, a kind other than ``"nan"``,
            ``"inf"`` or ``"-inf"``, or a pointer that does not lead to a ``null`` in the document.

    Example:
        >>> loads_exact('{"a": [null], "$nonfinite": {"/a/0": "inf"}}')
        {'a': [inf]}
        >>> loads_exact('{"a": [null], "$nonfinite": {"/a/3": "nan"}}')
        Traceback (most recent call last):
        ...
        ValueError: $nonfinite entry '/a/3' points at nothing: '/a' has 1 item(s)
    """
    value = json.loads(text)
    marks = value.pop(NONFINITE_KEY, None) if isinstance(value, dict) else None
    if marks is None:
        return value
    if not isinstance(marks, dict):
        raise ValueError(f"{NONFINITE_KEY} must be an object of JSON Pointers to 'nan', 'inf' or '-inf'; "
                         f"got {type(marks).__name__} {_short(marks)}")
    for pointer, kind in marks.items():
        if not isinstance(kind, str) or kind not in _NONFINITE:
            raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} has the kind {_short(kind)}; "
                             "allowed: 'nan', 'inf', '-inf'")
        node, last = _parent(value, pointer)
        node[last] = _NONFINITE[kind]
    return value


def _parent(document: Any, pointer: str) -> tuple[Any, Any]:
    """The container and key/index a ``$nonfinite`` JSON Pointer (RFC 6901) names; it must hold null."""
    if not pointer.startswith("/"):
        raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} is not a JSON Pointer to a value (it must start "
                         "with '/')")
    node, where = document, ""
    steps = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for i, step in enumerate(steps):
        if isinstance(node, list):
            if not (step.isascii() and step.isdigit() and (step == "0" or not step.startswith("0"))):
                raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} points at nothing: {step!r} is not a "
                                 f"list index at {where or '/'!r}")
            if int(step) >= len(node):
                raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} points at nothing: {where or '/'!r} has "
                                 f"{len(node)} item(s)")
            key: Any = int(step)
        elif isinstance(node, dict):
            if step not in node:
                raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} points at nothing: {where or '/'!r} has "
                                 f"no key {step!r}")
            key = step
        else:
            raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} points at nothing: {where!r} is "
                             f"{_short(node)}, not an object or a list")
        if i == len(steps) - 1:
            if node[key] is not None:
                raise ValueError(f"{NONFINITE_KEY} entry {pointer!r} points at {_short(node[key])}, not at "
                                 "the null it restores")
            return node, key
        node, where = node[key], f"{where}/{pointer.split('/')[1:][i]}"
    raise AssertionError("unreachable")  # pragma: no cover (a pointer starting with '/' has a step)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
