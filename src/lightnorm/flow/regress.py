"""Regression co-simulation: every preset and every spec file under ``specs/`` (or the specs
given), forward and backward, with several seeds and the edge-case tensors; JUnit XML.

Each spec's cases run in one simulator launch (``cosim.compare_many``; one Verilator build per
spec, cached). Cases: ``random-seedS`` (cosim.default_shape: about 4 beats per channel, n not a
multiple of the lanes) for each seed, ``long-seedS`` (about 40 beats and a ragged last block)
for the first seed, and ``edge`` (all-zero, constant, saturating, subnormal, mixed and outlier
channels; n not a multiple of any block).
"""

from __future__ import annotations

import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec import Spec, load, preset_names

DEFAULT_SEEDS = (0, 1, 2)


@dataclass
class CaseResult:
    spec: str
    case: str
    shape: tuple[int, ...]
    seed: int
    bit_exact: bool
    elements: int
    mismatches: int
    cycles: int
    time_s: float
    message: str | None  # why it failed


def spec_files(root: Path) -> list[Path]:
    """Spec files under ``root`` (recursively), leaving out sweep files (they have [sweep])."""
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*.toml")):
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            out.append(path)  # load() will report it
            continue
        if "sweep" not in table:
            out.append(path)
    return out


def default_specs(root: Path = Path("specs")) -> list[str]:
    return [*preset_names(), *(str(p) for p in spec_files(root))]


def _cases(spec: Spec, seeds: Sequence[int]) -> list[Any]:
    from ..verify import cosim

    shape = cosim.default_shape(spec)
    cases = [cosim.Case(f"random-seed{s}", shape, s, "both") for s in seeds]
    n_long = min(max(spec.min_channel_elems(), 40 * spec.hw.lanes + 5), spec.hw.max_channel_elems)
    cases.append(cosim.Case(f"long-seed{seeds[0]}", (1, 2, 1, n_long), seeds[0], "both"))
    eshape = cosim.edge_shape(spec)
    cases.append(cosim.Case("edge", eshape, 0, "both", cosim.edge_data(spec, eshape, 0)))
    return cases


def regress_spec(spec: Spec, seeds: Sequence[int] = DEFAULT_SEEDS) -> list[CaseResult]:
    from ..verify import cosim

    cases = _cases(spec, seeds)
    t0 = time.perf_counter()
    results = cosim.compare_many(spec, cases)
    per_case = (time.perf_counter() - t0) / len(cases)
    out = []
    for c, r in zip(cases, results, strict=True):
        msg = None
        if not r["bit_exact"]:
            first = (r.get("first_mismatches") or [None])[0]
            errs = r.get("errors") or []
            msg = (f"{r['mismatches']} mismatches in {r['elements']} values"
                   + (f"; first {first}" if first else "") + (f"; {errs[0]}" if errs else ""))
        out.append(CaseResult(spec.name, c.name, tuple(c.shape), c.seed, bool(r["bit_exact"]),
                              int(r["elements"]), int(r["mismatches"]), int(r.get("cycles", 0)),
                              per_case, msg))
    return out


def run(specs: Sequence[str], seeds: Sequence[int] = DEFAULT_SEEDS,
        on_spec: Callable[[str, list[CaseResult]], None] | None = None) -> list[CaseResult]:
    """Regress every spec (names or paths; loaded first, so a bad one fails before any run)."""
    loaded = [load(s) for s in specs]
    out: list[CaseResult] = []
    for spec in loaded:
        res = regress_spec(spec, seeds)
        out += res
        if on_spec is not None:
            on_spec(spec.name, res)
    return out


def junit_xml(results: Sequence[CaseResult]) -> bytes:
    """JUnit XML: a testsuite per spec, a testcase per case, a failure per mismatch."""
    root = ET.Element("testsuites", name="lightnorm regress",
                      tests=str(len(results)),
                      failures=str(sum(not r.bit_exact for r in results)),
                      time=f"{sum(r.time_s for r in results):.3f}")
    specs: dict[str, list[CaseResult]] = {}
    for r in results:
        specs.setdefault(r.spec, []).append(r)
    for name, rs in specs.items():
        suite = ET.SubElement(root, "testsuite", name=f"cosim.{name}", tests=str(len(rs)),
                              failures=str(sum(not r.bit_exact for r in rs)), errors="0",
                              skipped="0", time=f"{sum(r.time_s for r in rs):.3f}")
        for r in rs:
            tc = ET.SubElement(suite, "testcase", classname=f"lightnorm.regress.{name}",
                               name=r.case, time=f"{r.time_s:.3f}")
            props = ET.SubElement(tc, "properties")
            for k, v in (("shape", "x".join(map(str, r.shape))), ("seed", r.seed),
                         ("elements", r.elements), ("cycles", r.cycles)):
                ET.SubElement(props, "property", name=k, value=str(v))
            if not r.bit_exact:
                f = ET.SubElement(tc, "failure", message=r.message or "not bit-exact",
                                  type="BitMismatch")
                f.text = r.message or "not bit-exact"
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
