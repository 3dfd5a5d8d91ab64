"""Declared-schema helpers: each spec section is a frozen dataclass whose fields carry a check.

A field is declared with :func:`param` (a default, a check and a one-line description). The
generic :func:`build` turns a TOML/JSON table into the dataclass, rejecting unknown keys and
naming the dotted path of any bad value; :func:`to_table` goes back. Cross-field rules live in
each section's ``validate`` method, which raises :class:`SpecError` too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import SpecError

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class Check:
    """Validates and normalizes one raw value; ``describe`` says what is allowed."""

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, path: str, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class Int(Check):
    def __init__(self, lo: int, hi: int, power_of_two: bool = False) -> None:
        self.lo, self.hi, self.power_of_two = lo, hi, power_of_two

    def describe(self) -> str:
        kind = "a power of two" if self.power_of_two else "an integer"
        return f"{kind} in {self.lo}..{self.hi}"

    def __call__(self, path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(path, value, self.describe())
        if not self.lo <= value <= self.hi:
            raise SpecError(path, value, self.describe())
        if self.power_of_two and value & (value - 1):
            raise SpecError(path, value, self.describe())
        return value


class Float(Check):
    """A finite real in an open or closed interval."""

    def __init__(self, lo: float, hi: float, lo_open: bool = True, hi_open: bool = False) -> None:
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def describe(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"a number in {left}{self.lo:g}, {self.hi:g}{right}"

    def __call__(self, path: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(path, value, self.describe())
        try:
            v = float(value)
        except OverflowError:
            raise SpecError(path, value, self.describe()) from None
        if not math.isfinite(v):
            raise SpecError(path, value, self.describe())
        if v < self.lo or v > self.hi or (self.lo_open and v == self.lo) or (
            self.hi_open and v == self.hi
        ):
            raise SpecError(path, value, self.describe())
        return v


class Choice(Check):
    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def __call__(self, path: str, value: Any) -> str:
        if value not in self.choices:
            raise SpecError(path, value, self.describe())
        return str(value)


class Text(Check):
    """A string matching a regular expression (names that become files and identifiers)."""

    def __init__(self, pattern: str, what: str, max_len: int = 64) -> None:
        self.regex = re.compile(pattern)
        self.what = what
        self.max_len = max_len

    def describe(self) -> str:
        return self.what

    def __call__(self, path: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len or not self.regex.fullmatch(
            value
        ):
            raise SpecError(path, value, self.describe())
        return value


class AnyText(Check):
    def __init__(self, max_len: int = 2000) -> None:
        self.max_len = max_len

    def describe(self) -> str:
        return f"a string of at most {self.max_len} characters"

    def __call__(self, path: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise SpecError(path, value, self.describe())
        return value


def param(check: Check, doc: str, default: Any = _MISSING) -> Any:
    """Declare a spec field: its check, a one-line description and an optional default."""
    meta = {"check": check, "doc": doc}
    if default is _MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def build(cls: type[T], table: Any, path: str) -> T:
    """Build the frozen dataclass ``cls`` from ``table`` found at dotted ``path``."""
    if not isinstance(table, Mapping):
        raise SpecError(path or "<spec>", table, "a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in fields:
            allowed = ", ".join(fields)
            raise SpecError(_join(path, str(key)), table[key], f"no such key (known: {allowed})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in table:
            if f.default is _MISSING and f.default_factory is _MISSING:
                raise SpecError(sub, None, "a value (the field is required)")
            continue
        raw = table[name]
        check = f.metadata.get("check")
        nested = f.metadata.get("nested")
        if nested is not None:
            kwargs[name] = nested(raw, sub)
        elif check is not None:
            kwargs[name] = check(sub, raw)
        else:  # pragma: no cover - every field declares one or the other
            kwargs[name] = raw
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def to_table(obj: Any) -> dict[str, Any]:
    """Inverse of :func:`build`: a plain dict of the dataclass (nested sections as tables)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_table(v)
        else:
            out[f.name] = v
    extra = getattr(obj, "extra_table", None)
    if extra is not None:
        out.update(extra())
    return out


def describe_fields(cls: type) -> list[tuple[str, str, str]]:
    """(name, allowed values, description) for each declared field: for docs and --help."""
    rows = []
    for f in dataclasses.fields(cls):
        check = f.metadata.get("check")
        rows.append((f.name, check.describe() if check else "a table", f.metadata.get("doc", "")))
    return rows


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
