"""Sweep files: a base spec, fixed overrides and axes over spec fields (docs/flow.md).

```toml
[sweep]
name = "range-precision-block"      # lowercase letters, digits, '-'; names the points
base = "lightnorm"                  # a preset name or a spec file (relative to this file)
description = "..."
compare = ["fp32-baseline", "lightnorm"]   # presets run beside the points (same overrides)
stages = ["csim", "quality", "synth", "energy"]   # optional; default every stage
layer_shape = [32, 64, 28, 28]      # optional; the BN layer of the energy figures
clock_ns = 5.0                      # optional
accuracy = { dataset = "digits", epochs = 10, seeds = 3 }   # optional: the accuracy stage's
synth = "front"                     # optional: front (default), all or none (flow/explore.py)
synth_points = ["<point name>"]     # optional: points synthesized whatever the front

[sweep.set]                         # applied to the base and to the compared presets
"hw.lanes" = 4

[axes]                              # cartesian product ...
"compute.man_bits" = [5, 7, 9]
"storage.*.block" = [8, 16, 32]     # '*' = every key at that level that has the rest

# ... or an explicit list instead of [axes]:
# [[points]]
# "compute.man_bits" = 5
```

A point's spec is named ``<sweep name>-<20 hex digits of a hash of the sweep name and the
point's coordinates>``: stable when axes grow; 80 bits, so a collision among a million points
has a chance below 1e-12, and one is reported before anything runs. A combination the spec
rejects is listed with the ``SpecError`` reason and skipped. ``name`` and ``description`` are not
sweepable: a point's are derived from its coordinates.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LightnormError
from ..spec import Spec, SpecError, dumps, from_dict, load, preset_names
from ..spec.accelerator import NAME_MAX_LEN
from ..spec.names import reserved_reason
from ..train.accuracy import DATASETS
from . import stages as st

_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,26}")
_SWEEP_KEYS = {"name", "base", "description", "compare", "stages", "layer_shape", "clock_ns",
               "set", "tag", "accuracy", "synth", "synth_points"}
#: ``synth``: which points a sweep that synthesizes synthesizes (lightnorm.flow.explore)
SYNTH_MODES = ("front", "all", "none")
#: the settings of the accuracy stage a sweep file may give: key -> (check, what is expected)
_ACCURACY_KEYS: dict[str, tuple[Any, str]] = {
    "dataset": (lambda v: v in DATASETS, "one of " + ", ".join(DATASETS)),
    **{k: (lambda v, hi=hi: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi,
           f"an integer in 1..{hi}") for k, hi in st.ACCURACY_LIMITS.items()},
}


class SweepError(LightnormError):
    """A malformed sweep file: exit 2, one line naming the file, the field and the problem."""


@dataclass(frozen=True)
class Point:
    name: str
    coords: dict[str, Any]
    spec: Spec | None
    reason: str | None = None  # why the point is not a valid spec


@dataclass
class Sweep:
    name: str
    path: Path
    base: Spec
    description: str
    points: list[Point]
    compare: list[tuple[str, Spec]] = field(default_factory=list)  # (preset, spec as run)
    stages: tuple[str, ...] = st.STAGES
    layer_shape: tuple[int, int, int, int] = st.DEFAULT_LAYER_SHAPE
    clock_ns: float | None = None
    #: the accuracy stage's settings the file gives (dataset, epochs, seeds)
    accuracy: dict[str, Any] = field(default_factory=dict)
    #: which points get the synthesis stages (None: the command's default) and the points
    #: named to be synthesized whatever the front
    synth: str | None = None
    synth_points: tuple[str, ...] = ()

    @property
    def valid(self) -> list[Point]:
        return [p for p in self.points if p.spec is not None]

    @property
    def invalid(self) -> list[Point]:
        return [p for p in self.points if p.spec is None]

    def baseline_name(self, preset: str = "fp32-baseline") -> str | None:
        for name, spec in self.compare:
            if name == preset:
                return spec.name
        return None


def _table(spec: Spec) -> dict[str, Any]:
    return tomllib.loads(dumps(spec))


def _set_path(table: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set ``path`` (dotted, '*' for every matching key) in ``table``; SweepError if nothing
    matches."""
    parts = path.split(".")
    if not all(parts):
        raise SweepError(f"{where}: {path!r}: expected a dotted spec field such as "
                         "'compute.man_bits' or 'storage.*.block'")
    matched = 0

    def walk(node: dict[str, Any], i: int, wild: bool) -> None:
        nonlocal matched
        key = parts[i]
        if i == len(parts) - 1:
            if key == "*" or (wild and key not in node):
                return  # under a wildcard only existing fields are set (FP roles have no block)
            node[key] = copy.deepcopy(value)
            matched += 1
        elif key == "*":
            for child in node.values():
                if isinstance(child, dict):
                    walk(child, i + 1, True)
        elif isinstance(node.get(key), dict):
            walk(node[key], i + 1, wild)

    walk(table, 0, False)
    if matched == 0:
        raise SweepError(f"{where}: {path!r} matches no field of the base spec")


#: hex digits of a point's name (80 bits)
POINT_HASH_HEX = 20
#: spec fields a sweep cannot set: each point's are derived from its coordinates
UNSWEEPABLE = ("name", "description")


def _coords_blob(coords: Mapping[str, Any]) -> str:
    return json.dumps(coords, sort_keys=True, separators=(",", ":"))


def _coords_name(sweep: str, coords: Mapping[str, Any]) -> str:
    # salted with the sweep's name: in the (80-bit) event of a collision, renaming helps
    digest = hashlib.sha256(f"{sweep}\0{_coords_blob(coords)}".encode()).hexdigest()
    return f"{sweep}-{digest[:POINT_HASH_HEX]}"


def _check_sweepable(keys: Any, where: str) -> None:
    for k in keys:
        if str(k).split(".")[0] in UNSWEEPABLE:
            raise SweepError(f"{where}: {k!r}: a sweep cannot set {', '.join(UNSWEEPABLE)} (a "
                             "point's name and description come from its coordinates)")


def _expect(cond: bool, where: str, value: Any, expected: str) -> None:
    if not cond:
        raise SweepError(f"{where} = {value!r}: expected {expected}")


def load_sweep(path: str | Path) -> Sweep:
    """Read and expand a sweep file (SweepError / SpecError on a malformed file)."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"sweep file {p}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise SweepError(f"sweep file {p}: not a UTF-8 text file ({exc.reason} at byte "
                         f"{exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"sweep file {p}: not valid TOML ({exc})") from exc
    w = f"{p.name}"
    unknown = set(raw) - {"sweep", "axes", "points"}
    _expect(not unknown, f"{w}: top-level table", sorted(unknown), "only [sweep], [axes] or "
            "[[points]]")
    head = raw.get("sweep")
    _expect(isinstance(head, dict), f"{w}: [sweep]", head, "a table with name and base")
    assert isinstance(head, dict)
    unknown = set(head) - _SWEEP_KEYS
    _expect(not unknown, f"{w}: sweep keys", sorted(unknown), "keys among " +
            ", ".join(sorted(_SWEEP_KEYS)))
    name = head.get("name")
    _expect(isinstance(name, str) and bool(_NAME_RE.fullmatch(name)), f"{w}: sweep.name", name,
            "a lowercase name of letters, digits and '-', starting with a letter, at most 27 "
            "characters")
    assert isinstance(name, str)
    why = reserved_reason(_coords_name(name, {}))  # the points' names start with it
    _expect(why is None, f"{w}: sweep.name", name, f"a name its points can carry: {why}")
    base_ref = head.get("base")
    _expect(isinstance(base_ref, str) and bool(base_ref), f"{w}: sweep.base", base_ref,
            "a preset name or a spec file path")
    assert isinstance(base_ref, str)
    base_path = p.parent / base_ref
    base = load(base_ref if base_ref in preset_names() or not base_path.is_file()
                else base_path)
    stages = head.get("stages", list(st.STAGES))
    _expect(isinstance(stages, list) and bool(stages) and all(s in st.ALL_STAGES
                                                              for s in stages),
            f"{w}: sweep.stages", stages, "a non-empty list of " + ", ".join(st.ALL_STAGES))
    shape = head.get("layer_shape", list(st.DEFAULT_LAYER_SHAPE))
    _expect(isinstance(shape, list) and len(shape) == 4 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape),
        f"{w}: sweep.layer_shape", shape, "[N, C, H, W] of positive integers")
    clock = head.get("clock_ns")
    _expect(clock is None or (isinstance(clock, (int, float)) and not isinstance(clock, bool)
                              and clock > 0), f"{w}: sweep.clock_ns", clock,
            "a positive clock period in ns")
    accuracy = head.get("accuracy", {})
    _expect(isinstance(accuracy, dict) and set(accuracy) <= set(_ACCURACY_KEYS),
            f"{w}: sweep.accuracy", accuracy,
            "a table of " + ", ".join(_ACCURACY_KEYS) + " (the accuracy stage's settings)")
    for k, v in accuracy.items():
        check, expected = _ACCURACY_KEYS[k]
        _expect(check(v), f"{w}: sweep.accuracy.{k}", v, expected)
    synth = head.get("synth")
    _expect(synth is None or synth in SYNTH_MODES, f"{w}: sweep.synth", synth,
            "one of " + ", ".join(SYNTH_MODES))
    synth_points = head.get("synth_points", [])
    _expect(isinstance(synth_points, list) and all(isinstance(x, str) for x in synth_points),
            f"{w}: sweep.synth_points", synth_points, "a list of point names")
    overrides = head.get("set", {})
    _expect(isinstance(overrides, dict), f"{w}: [sweep.set]", overrides,
            "a table of 'field.path' = value")
    _check_sweepable(overrides, f"{w}: [sweep.set]")
    compare = head.get("compare", [])
    _expect(isinstance(compare, list) and all(c in preset_names() for c in compare),
            f"{w}: sweep.compare", compare, "a list of preset names among " +
            ", ".join(preset_names()))
    tag = head.get("tag", name)
    _expect(isinstance(tag, str) and bool(_NAME_RE.fullmatch(tag)), f"{w}: sweep.tag", tag,
            "a short lowercase name")

    def with_overrides(table: dict[str, Any], where: str) -> dict[str, Any]:
        t = copy.deepcopy(table)
        for k, v in overrides.items():
            _set_path(t, k, v, where)
        return t

    base_table = with_overrides(_table(base), f"{w}: [sweep.set]")

    # the points
    has_axes, has_points = "axes" in raw, "points" in raw
    _expect(has_axes != has_points, f"{w}: points", sorted(set(raw) & {"axes", "points"}),
            "exactly one of [axes] (cartesian product) or [[points]] (explicit list)")
    coords_list: list[dict[str, Any]] = []
    if has_axes:
        axes = raw["axes"]
        _expect(isinstance(axes, dict) and bool(axes), f"{w}: [axes]", axes,
                "a table of 'field.path' = [values]")
        _check_sweepable(axes, f"{w}: [axes]")
        for k, vals in axes.items():
            _expect(isinstance(vals, list) and bool(vals), f"{w}: axes.{k}", vals,
                    "a non-empty list of values")
        keys = list(axes)
        coords_list = [dict(zip(keys, combo, strict=True))
                       for combo in itertools.product(*(axes[k] for k in keys))]
    else:
        pts = raw["points"]
        _expect(isinstance(pts, list) and bool(pts) and all(isinstance(x, dict) for x in pts),
                f"{w}: [[points]]", pts, "a list of tables of 'field.path' = value")
        coords_list = [dict(x) for x in pts]
        for i, x in enumerate(coords_list):
            _check_sweepable(x, f"{w}: point {i}")

    # every name first (cheap), so a duplicate is reported before any spec is built
    names: dict[str, int] = {}
    for i, coords in enumerate(coords_list):
        pname = _coords_name(name, coords)
        j = names.setdefault(pname, i)
        if j != i:
            if _coords_blob(coords_list[j]) == _coords_blob(coords):
                raise SweepError(f"{w}: point {i} {coords!r} appears twice (also point {j})")
            raise SweepError(f"{w}: points {j} and {i} ({coords_list[j]!r}, {coords!r}) hash "
                             f"to the same name {pname} (a {4 * POINT_HASH_HEX}-bit collision); "
                             "rename the sweep")

    points: list[Point] = []
    for i, coords in enumerate(coords_list):
        pname = _coords_name(name, coords)
        table = copy.deepcopy(base_table)
        for k, v in coords.items():
            _set_path(table, k, v, f"{w}: point {i}")
        table["name"] = pname
        table["description"] = f"sweep {name}: " + ", ".join(f"{k}={v}" for k, v in
                                                             coords.items())
        try:
            points.append(Point(pname, coords, from_dict(table)))
        except SpecError as exc:
            points.append(Point(pname, coords, None, str(exc)))

    compared: list[tuple[str, Spec]] = []
    for preset in compare:
        ptable = _table(load(preset))
        t = with_overrides(ptable, f"{w}: [sweep.set] on {preset}")
        if t != ptable:
            t["name"] = f"{preset}-{tag}"[:NAME_MAX_LEN].rstrip("-_")
        try:
            compared.append((preset, from_dict(t)))
        except SpecError as exc:
            raise SweepError(f"{w}: compared preset {preset} with [sweep.set]: {exc}") from exc
    return Sweep(name, p, from_dict(base_table | {"name": base.name}) if overrides else base,
                 str(head.get("description", "")), points, compared, tuple(stages),
                 tuple(shape), None if clock is None else float(clock),  # type: ignore[arg-type]
                 dict(accuracy), synth, tuple(synth_points))


def describe(sweep: Sweep) -> list[str]:
    """Lines listing the sweep's points, the invalid ones with their reason."""
    out = [f"sweep {sweep.name}: {len(sweep.points)} points, {len(sweep.valid)} valid, "
           f"{len(sweep.invalid)} skipped; compared with " +
           (", ".join(s.name for _, s in sweep.compare) or "nothing")]
    for pt in sweep.invalid:
        out.append(f"  skipped {pt.name} {json.dumps(pt.coords, sort_keys=True)}: {pt.reason}")
    return out


def point_jobs(sweep: Sweep) -> Sequence[tuple[Spec, bool, dict[str, Any] | None]]:
    """(spec, is_preset, coordinates) of everything the sweep runs: compared presets first."""
    jobs: list[tuple[Spec, bool, dict[str, Any] | None]] = [(s, True, None)
                                                             for _, s in sweep.compare]
    jobs += [(pt.spec, False, pt.coords) for pt in sweep.valid if pt.spec is not None]
    return jobs
