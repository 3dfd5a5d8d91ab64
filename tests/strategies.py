"""Hypothesis strategies for spec tables, shared by the test files.

Use from a test module: ``from .strategies import valid_spec_tables`` (tests/ is a package).

``valid_spec_tables()`` draws plain tables (what TOML parses into) that satisfy every rule of
the spec: each field from its declared range (read from the schema itself, so the strategy
follows the schema when a range changes) and the cross-field rules (a BFP or MX block is a multiple
of the lanes, eps and momentum do not flush in the scalar format, chunks = 1 for standard BN,
min_channel_elems <= max_channel_elems, 1/max_channel_elems does not flush and
max_channel_elems fits the scalar format). Optional fields are sometimes left out.

``invalid_spec_cases()`` draws ``(table, path)``: a valid table with ONE mutation that the spec
must reject with a ``SpecError`` whose ``path`` is exactly ``path``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from lightnorm.spec import (
    CARRY_RULES,
    NORMALIZE_FORMS,
    ROUNDING_MODES,
    STORAGE_ROLES,
    BFPFormat,
    BNConfig,
    FPFormat,
    HWConfig,
    Spec,
    SpecError,
    from_dict,
)
from lightnorm.spec.accelerator import MAX_CHANNEL_ELEMS
from lightnorm.spec.formats import FAMILIES, MXFormat
from lightnorm.spec.names import reserved_reason
from lightnorm.spec.schema import AnyText, Check, Choice, Float, Int, Text

Table = dict[str, Any]

ARITH_ROLES = ("compute", "accum", "scalar")
SECTIONS: dict[str, type] = {"bn": BNConfig, "hw": HWConfig}


# --- reading the declared schema -----------------------------------------------------------
def field_map(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def check_of(cls: type, name: str) -> Check:
    chk = field_map(cls)[name].metadata.get("check")
    assert chk is not None, f"{cls.__name__}.{name} declares no check"
    return chk  # type: ignore[no-any-return]


def default_of(cls: type, name: str) -> Any:
    return field_map(cls)[name].default


def required_fields(cls: type) -> list[str]:
    return [
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def ints(chk: Check, lo: int | None = None, hi: int | None = None) -> st.SearchStrategy[int]:
    """Integers allowed by an ``Int`` check, optionally narrowed to ``lo..hi``."""
    assert isinstance(chk, Int)
    a = chk.lo if lo is None else max(lo, chk.lo)
    b = chk.hi if hi is None else min(hi, chk.hi)
    assert a <= b, (a, b)
    if chk.power_of_two:
        return st.sampled_from([1 << k for k in range(b.bit_length()) if a <= 1 << k <= b])
    return st.integers(a, b)


def choices(chk: Check) -> st.SearchStrategy[str]:
    assert isinstance(chk, Choice)
    return st.sampled_from(list(chk.choices))


def floats_in(chk: Check, lo: float | None = None) -> st.SearchStrategy[float]:
    """Finite floats allowed by a ``Float`` check, optionally at least ``lo``."""
    assert isinstance(chk, Float)
    a = chk.lo if lo is None else max(lo, chk.lo)
    return st.floats(a, chk.hi, exclude_min=chk.lo_open and a == chk.lo,
                     exclude_max=chk.hi_open, allow_nan=False, allow_infinity=False)


def _maybe(draw: st.DrawFn, table: Table, key: str, value_strategy: st.SearchStrategy[Any]) -> None:
    """Put an optional key in ``table`` half of the time (else the default applies)."""
    if draw(st.booleans()):
        table[key] = draw(value_strategy)


NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text(NAME_CHARS, max_size=39),
).filter(lambda n: reserved_reason(n) is None)  # keywords, header names: tests/test_names.py
parts = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", max_size=40),
)
descriptions = st.text(st.characters(codec="utf-8"), max_size=60)


# --- valid tables ----------------------------------------------------------------------------
@st.composite
def fp_tables(draw: st.DrawFn, min_exp_bits: int = 0) -> Table:
    t: Table = {
        "exp_bits": draw(ints(check_of(FPFormat, "exp_bits"), lo=min_exp_bits)),
        "man_bits": draw(ints(check_of(FPFormat, "man_bits"))),
    }
    _maybe(draw, t, "rounding", choices(check_of(FPFormat, "rounding")))
    return t


@st.composite
def storage_tables(draw: st.DrawFn, lanes: int) -> Table:
    kind = draw(st.sampled_from(list(FAMILIES)))
    if kind == "fp":
        return {"kind": "fp", **draw(fp_tables())}
    if kind == "mx":
        t = {"kind": "mx", "element": draw(choices(check_of(MXFormat, "element")))}
        block = ints(check_of(MXFormat, "block"), lo=lanes)
        if default_of(MXFormat, "block") % lanes == 0:
            _maybe(draw, t, "block", block)
        else:
            t["block"] = draw(block)
        return t
    t = {
        "kind": "bfp",
        "block": draw(ints(check_of(BFPFormat, "block"), lo=lanes)),
        "man_bits": draw(ints(check_of(BFPFormat, "man_bits"))),
        "exp_bits": draw(ints(check_of(BFPFormat, "exp_bits"))),
    }
    _maybe(draw, t, "rounding", choices(check_of(BFPFormat, "rounding")))
    _maybe(draw, t, "carry", choices(check_of(BFPFormat, "carry")))
    return t


def fp_of(table: Table) -> FPFormat:
    return FPFormat(**table)


def channel_elems_bound(scalar: FPFormat) -> int:
    """Largest max_channel_elems the scalar format surely takes: 1/n >= min_normal, n <= max."""
    hi = min(MAX_CHANNEL_ELEMS, math.floor(scalar.max_value))
    if -scalar.emin < 64:
        hi = min(hi, 1 << -scalar.emin)
    return hi


@st.composite
def valid_spec_tables(draw: st.DrawFn) -> Table:
    """A random table that ``lightnorm.spec.from_dict`` must accept."""
    # Scalar exponent >= 3: with 2 exponent bits the smallest normal is 1, so 1/n flushes for
    # every n >= 2 and no spec can be valid.
    scalar_t = draw(fp_tables(min_exp_bits=3))
    scalar = fp_of(scalar_t)
    n_hi = channel_elems_bound(scalar)
    assert n_hi >= 2

    lanes = draw(ints(check_of(HWConfig, "lanes")))
    mode = draw(choices(check_of(BNConfig, "mode")))
    bn: Table = {"mode": mode}
    if mode == "standard":
        chunks = 1
        _maybe(draw, bn, "chunks", st.just(1))
    else:
        k_hi = min(n_hi // 2, (n_hi - 1) // lanes + 1)
        chunks = draw(ints(check_of(BNConfig, "chunks"), hi=k_hi))
        if chunks != 1 or draw(st.booleans()):
            bn["chunks"] = chunks
    # eps and momentum: anything >= the smallest normal of the scalar format never flushes.
    for key in ("eps", "momentum"):
        safe = floats_in(check_of(BNConfig, key), lo=scalar.min_normal)
        if default_of(BNConfig, key) >= scalar.min_normal:
            _maybe(draw, bn, key, safe)
        else:
            bn[key] = draw(safe)
    _maybe(draw, bn, "normalize", choices(check_of(BNConfig, "normalize")))

    n_lo = max(2 * chunks, (chunks - 1) * lanes + 1)
    hw: Table = {
        "lanes": lanes,
        "max_channel_elems": draw(ints(check_of(HWConfig, "max_channel_elems"), lo=n_lo,
                                       hi=n_hi)),
    }
    _maybe(draw, hw, "accum_ways", ints(check_of(HWConfig, "accum_ways")))
    _maybe(draw, hw, "clock_ns", floats_in(check_of(HWConfig, "clock_ns")))
    _maybe(draw, hw, "part", parts)

    table: Table = {
        "name": draw(names),
        "bn": bn,
        "hw": hw,
        "storage": {role: draw(storage_tables(lanes)) for role in STORAGE_ROLES},
        "compute": draw(fp_tables()),
        "accum": draw(fp_tables()),
        "scalar": scalar_t,
    }
    _maybe(draw, table, "description", descriptions)
    return table


# --- one-mutation invalid tables -------------------------------------------------------------
def _get(table: Table, path: str) -> Any:
    node: Any = table
    for key in path.split(".") if path else []:
        node = node[key]
    return node


def _set(table: Table, path: str, value: Any) -> None:
    *head, last = path.split(".")
    _get(table, ".".join(head))[last] = value


def _del(table: Table, path: str) -> None:
    *head, last = path.split(".")
    del _get(table, ".".join(head))[last]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def table_paths(table: Table) -> list[str]:
    """Dotted paths of every table in a spec table ('' is the top level)."""
    return ["", "bn", "hw", "storage", *[f"storage.{r}" for r in STORAGE_ROLES], *ARITH_ROLES]


def allowed_keys(table: Table, path: str) -> set[str]:
    if path == "":
        return set(field_map(Spec))
    if path in SECTIONS:
        return set(field_map(SECTIONS[path]))
    if path == "storage":
        return set(STORAGE_ROLES)
    if path.startswith("storage."):
        return {"kind", *field_map(FAMILIES[_get(table, path)["kind"]])}
    return set(field_map(FPFormat))


def leaf_checks(table: Table) -> dict[str, Check]:
    """Every leaf value of the table (present or not) and its declared check."""
    out: dict[str, Check] = {}
    for name in ("name", "description"):
        out[name] = check_of(Spec, name)
    for sec, cls in SECTIONS.items():
        for name in field_map(cls):
            out[f"{sec}.{name}"] = check_of(cls, name)
    for role in STORAGE_ROLES:
        cls = FAMILIES[table["storage"][role]["kind"]]
        out[f"storage.{role}.kind"] = Choice(*FAMILIES)
        for name in field_map(cls):
            out[f"storage.{role}.{name}"] = check_of(cls, name)
    for role in ARITH_ROLES:
        for name in field_map(FPFormat):
            out[f"{role}.{name}"] = check_of(FPFormat, name)
    return out


def required_paths(table: Table) -> list[str]:
    out = [n for n in required_fields(Spec)]
    for sec, cls in SECTIONS.items():
        out += [f"{sec}.{n}" for n in required_fields(cls)]
    for role in STORAGE_ROLES:
        cls = FAMILIES[table["storage"][role]["kind"]]
        out += [f"storage.{role}", f"storage.{role}.kind"]
        out += [f"storage.{role}.{n}" for n in required_fields(cls)]
    for role in ARITH_ROLES:
        out += [f"{role}.{n}" for n in required_fields(FPFormat)]
    return out


BAD_NAMES = ["9x", "a b", "A", "", "Abc", "a.b", "a/b", "../a", "ä", "a" * 65, "-a", "_a",
             "a\n", "a;b", "a-", "a--b", "ln_fp", "stdint", "module"]


def wrong_type_values(chk: Check) -> st.SearchStrategy[Any]:
    """Values of a type the check never accepts (TOML-expressible)."""
    common = st.one_of(
        st.booleans(),
        st.lists(st.integers(0, 9), max_size=3),
        st.just({"a": 1}),
        st.just(datetime.date(2024, 1, 2)),
    )
    if isinstance(chk, Int):
        return st.one_of(common, st.text(max_size=5),
                         st.floats(allow_nan=False, allow_infinity=False))
    if isinstance(chk, Float):
        return st.one_of(common, st.text(max_size=5))
    # strings, names and choices
    return st.one_of(common, st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False))


def out_of_range_values(chk: Check) -> st.SearchStrategy[Any]:
    if isinstance(chk, Int):
        outs = st.one_of(st.integers(max_value=chk.lo - 1), st.integers(min_value=chk.hi + 1))
        if chk.power_of_two:
            non_pow = [v for v in range(max(chk.lo, 3), min(chk.hi, 300)) if v & (v - 1)]
            outs = st.one_of(outs, st.sampled_from(non_pow))
        # TOML integers are 64-bit.
        return outs.filter(lambda v: -(1 << 63) <= v < 1 << 63)
    if isinstance(chk, Float):
        # Magnitudes stay below 1e300: a huge *integer* in a float field is a known spec bug
        # (OverflowError instead of SpecError), tested on its own in test_spec.py.
        below = st.floats(max_value=chk.lo, allow_nan=False, min_value=-1e300)
        above = st.floats(min_value=chk.hi, allow_nan=False, max_value=1e300)
        if not chk.lo_open:
            below = below.filter(lambda v: v < chk.lo)
        if not chk.hi_open:
            above = above.filter(lambda v: v > chk.hi)
        return st.one_of(below, above, st.just(math.nan), st.just(math.inf), st.just(-math.inf))
    if isinstance(chk, Choice):
        return st.text(max_size=12).filter(lambda v: v not in chk.choices)
    if isinstance(chk, Text):
        return st.one_of(st.sampled_from(BAD_NAMES), st.text(max_size=8)).filter(
            lambda v: len(v) > chk.max_len or not chk.regex.fullmatch(v)
        )
    assert isinstance(chk, AnyText)
    return st.just("x" * (chk.max_len + 1))


@st.composite
def invalid_spec_cases(draw: st.DrawFn) -> tuple[Table, str, str]:
    """``(table, path, kind)``: a valid table with one mutation, the path the error must name."""
    t = draw(valid_spec_tables())
    kind = draw(st.sampled_from([
        "unknown_key", "missing", "out_of_range", "wrong_type", "bad_name", "block_lanes",
        "standard_chunks", "small_channel", "eps_flush", "momentum_flush", "not_a_table",
    ]))
    if kind == "unknown_key":
        where = draw(st.sampled_from(table_paths(t)))
        known = allowed_keys(t, where) | set(_get(t, where))
        key = draw(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
                   .filter(lambda k: k not in known))
        _get(t, where)[key] = draw(st.one_of(st.integers(0, 9), st.text(max_size=3)))
        return t, _join(where, key), kind
    if kind == "missing":
        path = draw(st.sampled_from(required_paths(t)))
        _del(t, path)
        return t, path, kind
    if kind in ("out_of_range", "wrong_type"):
        checks = leaf_checks(t)
        path = draw(st.sampled_from(sorted(checks)))
        chk = checks[path]
        if kind == "wrong_type":
            value = draw(wrong_type_values(chk))
        elif path.endswith(".kind"):
            value = draw(st.text(max_size=6).filter(lambda v: v not in FAMILIES))
        else:
            value = draw(out_of_range_values(chk))
        _set(t, path, value)
        return t, path, kind
    if kind == "bad_name":
        t["name"] = draw(st.sampled_from(BAD_NAMES))
        return t, "name", kind
    if kind == "block_lanes":
        lanes = draw(st.sampled_from([2, 4, 8, 16, 32, 64]))
        block = draw(st.sampled_from([b for b in (1, 2, 4, 8, 16, 32) if b < lanes]))
        role = draw(st.sampled_from(STORAGE_ROLES))
        t["hw"]["lanes"] = lanes
        t["storage"][role] = {"kind": "bfp", "block": block, "man_bits": 7, "exp_bits": 8}
        first_bad = next(r for r in STORAGE_ROLES
                         if t["storage"][r]["kind"] != "fp"
                         and t["storage"][r].get("block", 32) % lanes)
        return t, f"storage.{first_bad}.block", kind
    if kind == "standard_chunks":
        t["bn"]["mode"] = "standard"
        t["bn"]["chunks"] = draw(ints(check_of(BNConfig, "chunks"), lo=2))
        return t, "bn.chunks", kind
    if kind == "small_channel":
        lanes = t["hw"]["lanes"]
        chunks = draw(ints(check_of(BNConfig, "chunks"), lo=2))
        n_min = max(2 * chunks, (chunks - 1) * lanes + 1)
        t["bn"]["mode"] = "range"
        t["bn"]["chunks"] = chunks
        t["hw"]["max_channel_elems"] = draw(st.integers(2, n_min - 1))
        return t, "hw.max_channel_elems", kind
    if kind in ("eps_flush", "momentum_flush"):
        small = draw(fp_tables(min_exp_bits=3).filter(lambda s: s["exp_bits"] <= 6))
        t["scalar"] = small
        tiny = fp_of(small).min_normal * draw(st.floats(1e-6, 0.49))
        if kind == "eps_flush":
            t["bn"]["eps"] = tiny
            return t, "bn.eps", kind
        t["bn"]["eps"] = 0.5
        t["bn"]["momentum"] = tiny
        return t, "bn.momentum", kind
    # not_a_table
    where = draw(st.sampled_from([p for p in table_paths(t) if p]))
    _set(t, where, draw(st.one_of(st.integers(0, 9), st.text(max_size=4),
                                  st.lists(st.integers(0, 9), max_size=3), st.booleans())))
    return t, where, kind


# --- small specs for co-simulation ------------------------------------------------------------


@st.composite
def small_spec_tables(draw: st.DrawFn, clocks: tuple[float, ...] = (3.0, 5.0, 10.0, 40.0)
                      ) -> dict[str, Any]:
    """Valid specs with few lanes and small blocks (quick to co-simulate), any formats, at
    one of ``clocks`` (ns: the register placement differs from clock to clock)."""
    lanes = draw(st.sampled_from([1, 2, 4]))
    rounding = st.sampled_from(ROUNDING_MODES)

    def fp(lo_e: int = 2) -> dict[str, Any]:
        return {"exp_bits": draw(st.integers(lo_e, 11)), "man_bits": draw(st.integers(1, 23)),
                "rounding": draw(rounding)}

    def storage() -> dict[str, Any]:
        if draw(st.booleans()):
            return {"kind": "fp", **fp()}
        return {"kind": "bfp", "block": lanes * draw(st.sampled_from([1, 2, 4])),
                "man_bits": draw(st.integers(1, 16)), "exp_bits": draw(st.integers(2, 11)),
                "rounding": draw(rounding), "carry": draw(st.sampled_from(CARRY_RULES))}

    mode = draw(st.sampled_from(["standard", "range"]))
    table = {
        "name": "rnd-" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6,
                                      max_size=6)),
        "bn": {"mode": mode, "chunks": draw(st.integers(1, 4)) if mode == "range" else 1,
               "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1])),
               "momentum": draw(st.sampled_from([0.1, 0.5])),
               "normalize": draw(st.sampled_from(NORMALIZE_FORMS))},
        "hw": {"lanes": lanes, "max_channel_elems": draw(st.sampled_from([64, 300, 4096])),
               "accum_ways": draw(st.sampled_from([1, 2, 4, 8, 16])),
               "clock_ns": draw(st.sampled_from(clocks))},
        "storage": {r: storage() for r in ("x", "y", "dy", "dx")},
        "compute": fp(), "accum": fp(), "scalar": fp(lo_e=5),
    }
    try:
        from_dict(table)
    except SpecError:
        reject()
    return table
