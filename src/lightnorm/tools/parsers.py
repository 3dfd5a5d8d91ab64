"""Parse tool reports into typed, normalized metrics.

Every parser takes the report's text and the path it came from, and returns a frozen dataclass
of numbers. A report that is malformed or truncated raises :class:`ReportParseError` naming the
file and what is missing - never a silent zero, never ``None`` where the report must give a
number. ``None`` appears only where the report itself says "not available" (an HLS latency of
``undef``, a Yosys area without a liberty file) or leaves an optional element out (``URAM`` of
a part without UltraRAM), and the field's docstring says so. A number that cannot be (a negative
resource count, area, clock period, latency, leakage or switching power) is a
:class:`ReportParseError` too. Timing-path arrival and required times, slack and internal power
keep their sign: they can be negative in a real report.

Kinds (:data:`KINDS`), each checked against real tool output (tests/data/reports/README.md):

* ``yosys-stat``: Yosys ``stat`` text (``tee -o FILE stat [-liberty LIB]``), both the tabular
  layout of Yosys >= 0.5x (checked on 0.70) and the ``Number of cells:`` layout of older
  releases (checked on 0.23). Per-module sections and the ``design hierarchy`` totals.
* ``yosys-stat-json``: ``stat -json`` (0.70 and 0.23 layouts).
* ``opensta-checks``: OpenSTA ``report_checks`` (full format, any ``-fields``/``-digits``).
* ``opensta-power``: OpenSTA ``report_power`` (design summary table).
* ``opensta-log``: one file holding both (the log of a script running both reports).
* ``hls-csynth``: Vitis HLS / Vivado HLS ``csynth.xml`` (``DSP`` or ``DSP48E``; ``URAM`` absent
  before it existed; ``undef`` latency).
* ``vivado-utilization``: Vivado ``report_utilization`` text (7-series ``Slice LUTs`` and
  UltraScale ``CLB LUTs*``).
* ``vivado-power``: Vivado ``report_power`` text (the summary table).

:func:`parse_file` detects the kind from the content (not the file name) and parses it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightnorm.errors import LightnormError

KIND_YOSYS_STAT = "yosys-stat"
KIND_YOSYS_STAT_JSON = "yosys-stat-json"
KIND_STA_CHECKS = "opensta-checks"
KIND_STA_POWER = "opensta-power"
KIND_STA_LOG = "opensta-log"
KIND_HLS_CSYNTH = "hls-csynth"
KIND_VIVADO_UTILIZATION = "vivado-utilization"
KIND_VIVADO_POWER = "vivado-power"

KINDS: tuple[str, ...] = (
    KIND_YOSYS_STAT, KIND_YOSYS_STAT_JSON, KIND_STA_CHECKS, KIND_STA_POWER, KIND_STA_LOG,
    KIND_HLS_CSYNTH, KIND_VIVADO_UTILIZATION, KIND_VIVADO_POWER,
)


class ReportParseError(LightnormError, ValueError):
    """A report that cannot be read: unknown kind, malformed, truncated, or missing a field.

    The message names the file and what is missing. It is a :class:`ValueError` and a
    :class:`~lightnorm.errors.LightnormError`, so the ``lightnorm`` command reports it as one
    line on stderr with exit status 2.
    """

    exit_code = 2

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class _Metrics:
    """Mixin: plain-data export of a metrics dataclass (JSON-ready dicts, lists, numbers)."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- number helpers -------------------------------------------------------------------------------
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _to_int(path: str, text: str, what: str) -> int:
    t = text.strip().replace(",", "")
    if not re.fullmatch(r"[-+]?\d+", t):
        raise ReportParseError(path, f"{what} = {text.strip()!r}: expected an integer")
    return int(t)


def _to_float(path: str, text: str, what: str) -> float:
    t = text.strip().replace(",", "")
    if not re.fullmatch(_FLOAT, t):
        raise ReportParseError(path, f"{what} = {text.strip()!r}: expected a number")
    value = float(t)
    if not math.isfinite(value):
        raise ReportParseError(path, f"{what} = {text.strip()!r}: expected a finite number")
    return value


def _to_count(path: str, text: str, what: str) -> int:
    """A resource count or a number of cycles: an integer >= 0."""
    value = _to_int(path, text, what)
    if value < 0:
        raise ReportParseError(path, f"{what} = {text.strip()!r}: expected a count >= 0")
    return value


def _to_size(path: str, text: str, what: str, positive: bool = False) -> float:
    """An area, a clock period, a power that cannot be negative (``positive``: nor zero)."""
    value = _to_float(path, text, what)
    if value < 0 or (positive and value == 0):
        raise ReportParseError(path, f"{what} = {text.strip()!r}: expected a number "
                               + ("> 0" if positive else ">= 0"))
    return value


def _strip_escape(name: str) -> str:
    """Yosys public names carry a leading backslash (``\\top``); drop it."""
    return name[1:] if name.startswith("\\") else name


# ==================================================================================================
# Yosys stat
# ==================================================================================================
@dataclass(frozen=True)
class YosysModule(_Metrics):
    """One module's own contents (excluding what its submodules contain)."""

    name: str
    #: leaf cells of this module, submodule instances not counted
    cells: int
    #: leaf cell type -> count (submodule instances are in :attr:`submodules`)
    cell_types: dict[str, int]
    #: submodule (module name) -> number of instances in this module
    submodules: dict[str, int]
    #: area of the leaf cells of this module (liberty units, um^2 for OSU 0.18); None when the
    #: report has no area (``stat`` without ``-liberty``, or the 0.23 JSON layout)
    area: float | None
    #: area of the sequential cells among them; None when the report does not give it
    sequential_area: float | None
    wires: int
    wire_bits: int


@dataclass(frozen=True)
class YosysStat(_Metrics):
    """Yosys ``stat``: per-module contents and the whole design (the top with its submodules)."""

    source: str  # "text" or "json"
    #: "Yosys 0.70 (git sha1 ...)" from the JSON ``creator``; None for text (it does not say)
    yosys_version: str | None
    top: str
    #: whether the report carries liberty areas
    has_area: bool
    modules: dict[str, YosysModule]
    #: leaf cells of the whole design (submodule instances expanded)
    cells: int
    cell_types: dict[str, int]
    #: chip area of the top including its submodules; None only when ``has_area`` is False
    area: float | None
    sequential_area: float | None
    #: cell types Yosys had no area for (e.g. ``$scopeinfo`` left by ``flatten``); a mapped
    #: cell here means the area is understated
    unknown_area_types: tuple[str, ...]


def _last_stat_block(text: str) -> str:
    """The output of the last ``stat`` in the text (a log may hold several)."""
    starts = [m.start() for m in re.finditer(r"^\s*\d+(?:\.\d+)*\. Printing statistics\.\s*$",
                                             text, re.M)]
    return text[starts[-1]:] if starts else text


def _split_sections(path: str, text: str) -> list[tuple[str, list[str]]]:
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^=== (.+) ===\s*$", line)
        if m:
            sections.append((m.group(1).strip(), []))
        elif sections:
            sections[-1][1].append(line)
    if not sections:
        raise ReportParseError(path, "no '=== module ===' section: not Yosys stat output")
    return sections


def parse_yosys_stat(text: str, path: str | Path = "<text>") -> YosysStat:
    """Yosys ``stat`` text output (with or without ``-liberty``), any supported layout."""
    p = str(path)
    block = _last_stat_block(text)
    if re.search(r"^\s+Number of cells:", block, re.M):
        return _yosys_text_old(p, block)
    if re.search(r"^\s+\+-+(Local Count|Count including submodules)", block, re.M):
        return _yosys_text_new(p, block)
    raise ReportParseError(p, "no Yosys stat cell counts ('Number of cells:' or the "
                           "'+----------Local Count' table)")


def _unknown_area_types(block: str, module_names: set[str]) -> tuple[str, ...]:
    found = []
    for m in re.finditer(r"Area for cell type (\S+) is unknown!", block):
        name = _strip_escape(m.group(1))
        if name not in module_names and name not in found:
            found.append(name)
    return tuple(found)


def _chip_areas(p: str, lines: list[str]) -> tuple[float | None, float | None]:
    area = seq = None
    for line in lines:
        m = re.match(r"^\s*Chip area for (?:top )?module '[^']*': (\S+)\s*$", line)
        if m:
            area = _to_size(p, m.group(1), "chip area")
        m = re.match(r"^\s*of which used for sequential elements: (\S+)", line)
        if m:
            seq = _to_size(p, m.group(1), "sequential area")
    return area, seq


# --- Yosys >= 0.5x tabular layout -----------------------------------------------------------------
_NEW_ROW_LIB = re.compile(r"^\s*(?P<count>\d+|-)\s+(?P<area>" + _FLOAT + r"|-)(?P<sp> +)"
                          r"(?P<label>\S.*?)\s*$")
_NEW_ROW = re.compile(r"^\s*(?P<count>\d+|-)(?P<sp> +)(?P<label>\S.*?)\s*$")


def _new_table(p: str, where: str, lines: list[str], lib: bool) -> dict[str, Any]:
    """Rows of one count table: categories with their items (cell types, submodules)."""
    cats: dict[str, tuple[int | None, float | None]] = {}
    items: dict[str, dict[str, tuple[int, float | None]]] = {}
    current = None
    rx = _NEW_ROW_LIB if lib else _NEW_ROW
    for line in lines:
        if not line.strip() or re.match(r"^\s*[+|]", line):
            continue
        if re.match(r"^\s*(Chip area|of which|Area for cell type)", line):
            continue
        m = rx.match(line)
        if not m:
            continue
        count = None if m.group("count") == "-" else int(m.group("count"))
        area = None
        if lib and m.group("area") != "-":
            area = _to_size(p, m.group("area"), f"{where}: area of {m.group('label')!r}")
        label = m.group("label")
        if len(m.group("sp")) >= 3 and current is not None:
            if count is None:
                raise ReportParseError(p, f"{where}: {current} item {label!r} has no count")
            items.setdefault(current, {})[_strip_escape(label)] = (count, area)
        else:
            cats[label] = (count, area)
            current = label if label in ("cells", "submodules") else None
    return {"cats": cats, "items": items}


def _new_sub_blocks(lines: list[str]) -> list[list[str]]:
    """A section split at its ``+----------`` table headers."""
    blocks: list[list[str]] = []
    for line in lines:
        if re.match(r"^\s+\+-{4,}", line):
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
    return blocks


def _yosys_text_new(p: str, block: str) -> YosysStat:
    lib = bool(re.search(r"\+-(Local Area|Area including submodules)", block))
    sections = _split_sections(p, block)
    module_names = {name for name, _ in sections if name != "design hierarchy"}
    modules: dict[str, YosysModule] = {}
    design_lines: list[str] | None = None
    for name, lines in sections:
        if name == "design hierarchy":
            design_lines = lines
            continue
        where = f"module {name!r}"
        subs = _new_sub_blocks(lines)
        if not subs:
            raise ReportParseError(p, f"{where}: no count table")
        table = _new_table(p, where, subs[0], lib)
        modules[name] = _new_module(p, name, table, lines, lib, module_names)
    if not modules:
        raise ReportParseError(p, "no module sections")

    unknown = _unknown_area_types(block, module_names)
    if design_lines is None:
        return _single_module_design(p, "text", None, modules, lib, unknown)

    subs = _new_sub_blocks(design_lines)
    if len(subs) < 2:
        raise ReportParseError(p, "design hierarchy: expected the module list and the totals "
                               "table (truncated?)")
    top = None
    for line in subs[0]:
        m = (_NEW_ROW_LIB if lib else _NEW_ROW).match(line)
        if m and line.strip():
            top = _strip_escape(m.group("label"))
            break
    if top is None or top not in modules:
        raise ReportParseError(p, "design hierarchy: no top module in the module list")
    table = _new_table(p, "design hierarchy", subs[1], lib)
    cells, types = _table_cells(p, "design hierarchy", table, module_names)
    area, seq = _chip_areas(p, design_lines)
    if lib and area is None:
        raise ReportParseError(p, f"design hierarchy: missing \"Chip area for top module "
                               f"'\\{top}'\" (truncated?)")
    return YosysStat("text", None, top, lib, modules, cells, types, area, seq, unknown)


def _table_cells(p: str, where: str, table: dict[str, Any],
                 module_names: set[str]) -> tuple[int, dict[str, int]]:
    cats, items = table["cats"], table["items"]
    if "cells" not in cats or cats["cells"][0] is None:
        raise ReportParseError(p, f"{where}: missing the 'cells' count (truncated?)")
    cells = cats["cells"][0]
    types = {k: c for k, (c, _) in items.get("cells", {}).items() if k not in module_names}
    if sum(types.values()) != cells:
        raise ReportParseError(p, f"{where}: cell types add up to {sum(types.values())}, not the "
                               f"{cells} cells reported (truncated?)")
    return cells, types


def _new_module(p: str, name: str, table: dict[str, Any], lines: list[str], lib: bool,
                module_names: set[str]) -> YosysModule:
    where = f"module {name!r}"
    cells, types = _table_cells(p, where, table, module_names)
    subs = {k: c for k, (c, _) in table["items"].get("submodules", {}).items()}
    nsub = table["cats"].get("submodules", (0, None))[0] or 0
    if sum(subs.values()) != nsub:
        raise ReportParseError(p, f"{where}: submodule instances add up to "
                               f"{sum(subs.values())}, not {nsub} (truncated?)")
    area, seq = _chip_areas(p, lines)
    if lib and area is None:
        raise ReportParseError(p, f"{where}: missing \"Chip area for module '\\{name}'\" "
                               f"(truncated?)")
    return YosysModule(name, cells, types, subs, area, seq, *_wires(p, where, table["cats"]))


def _wires(p: str, where: str, cats: Mapping[str, tuple[int | None, Any]]) -> tuple[int, int]:
    out = []
    for key in ("wires", "wire bits"):
        if key not in cats or cats[key][0] is None:
            raise ReportParseError(p, f"{where}: missing the '{key}' count")
        out.append(int(cats[key][0]))  # type: ignore[arg-type]
    return out[0], out[1]


def _single_module_design(p: str, source: str, version: str | None,
                          modules: dict[str, YosysModule], lib: bool,
                          unknown: tuple[str, ...]) -> YosysStat:
    if len(modules) != 1:
        raise ReportParseError(p, f"{len(modules)} modules and no 'design hierarchy' totals: "
                               "run 'hierarchy -top <top>' before 'stat' so Yosys reports "
                               "the design")
    (mod,) = modules.values()
    if lib and mod.area is None:
        raise ReportParseError(p, f"module {mod.name!r}: missing its chip area")
    return YosysStat(source, version, mod.name, lib, modules, mod.cells, dict(mod.cell_types),
                     mod.area, mod.sequential_area, unknown)


# --- Yosys "Number of cells:" layout (0.23 era) ---------------------------------------------------
def _yosys_text_old(p: str, block: str) -> YosysStat:
    lib = "Chip area for" in block
    sections = _split_sections(p, block)
    module_names = {name for name, _ in sections if name != "design hierarchy"}
    modules: dict[str, YosysModule] = {}
    design_lines: list[str] | None = None
    for name, lines in sections:
        if name == "design hierarchy":
            design_lines = lines
            continue
        where = f"module {name!r}"
        counts, types = _old_counts(p, where, lines)
        leaf = {k: v for k, v in types.items() if k not in module_names}
        subs = {k: v for k, v in types.items() if k in module_names}
        if counts["cells"] != sum(types.values()):
            raise ReportParseError(p, f"{where}: cell types add up to {sum(types.values())}, "
                                   f"not the {counts['cells']} cells reported (truncated?)")
        area, seq = _chip_areas(p, lines)
        if lib and area is None:
            raise ReportParseError(p, f"{where}: missing \"Chip area for module '\\{name}'\" "
                                   "(truncated?)")
        modules[name] = YosysModule(name, sum(leaf.values()), leaf, subs, area, seq,
                                    counts["wires"], counts["wire bits"])
    if not modules:
        raise ReportParseError(p, "no module sections")
    unknown = _unknown_area_types(block, module_names)
    if design_lines is None:
        return _single_module_design(p, "text", None, modules, lib, unknown)

    top = None
    for line in design_lines:
        m = re.match(r"^   (\S+)\s+\d+\s*$", line)
        if m:
            top = _strip_escape(m.group(1))
            break
    if top is None or top not in modules:
        raise ReportParseError(p, "design hierarchy: no top module in the module list")
    counts, types = _old_counts(p, "design hierarchy", design_lines)
    leaf = {k: v for k, v in types.items() if k not in module_names}
    if counts["cells"] != sum(leaf.values()):
        raise ReportParseError(p, f"design hierarchy: cell types add up to "
                               f"{sum(leaf.values())}, not the {counts['cells']} cells reported "
                               "(truncated?)")
    area, seq = _chip_areas(p, design_lines)
    if lib and area is None:
        raise ReportParseError(p, f"design hierarchy: missing \"Chip area for top module "
                               f"'\\{top}'\" (truncated?)")
    return YosysStat("text", None, top, lib, modules, counts["cells"], leaf, area, seq, unknown)


def _old_counts(p: str, where: str, lines: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    counts: dict[str, int] = {}
    types: dict[str, int] = {}
    in_cells = False
    for line in lines:
        m = re.match(r"^   Number of ([a-z ]+):\s+(\d+)\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
            in_cells = m.group(1) == "cells"
            continue
        m = re.match(r"^     (\S+)\s+(\d+)\s*$", line)
        if m and in_cells:
            types[_strip_escape(m.group(1))] = int(m.group(2))
            continue
        if line.strip():
            in_cells = False
    for key in ("wires", "wire bits", "cells"):
        if key not in counts:
            raise ReportParseError(p, f"{where}: missing 'Number of {key}:' (truncated?)")
    return counts, types


# --- Yosys stat -json -----------------------------------------------------------------------------
def parse_yosys_stat_json(text: str, path: str | Path = "<text>") -> YosysStat:
    """Yosys ``stat -json`` (``tee -q -o FILE stat -json [-liberty LIB]``)."""
    p = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportParseError(p, f"not valid JSON ({exc.msg} at line {exc.lineno}; "
                               "truncated?)") from exc
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
        raise ReportParseError(p, "missing the 'modules' object of Yosys stat -json")
    creator = data.get("creator")
    version = creator if isinstance(creator, str) else None
    raw_modules = {_strip_escape(k): v for k, v in data["modules"].items()}
    if not raw_modules:
        raise ReportParseError(p, "'modules' is empty")
    names = set(raw_modules)

    parsed: dict[str, tuple[dict[str, int], dict[str, int], float | None, float | None, int, int]]
    parsed = {}
    for name, m in raw_modules.items():
        where = f"modules.{name}"
        leaf, subs = _json_types(p, where, m, names)
        area = _json_opt_float(p, where, m, "area")
        seq = _json_opt_float(p, where, m, "sequential_area")
        parsed[name] = (leaf, subs, area, seq, _json_int(p, where, m, "num_wires"),
                        _json_int(p, where, m, "num_wire_bits"))
    has_area = any(v[2] is not None for v in parsed.values())
    if has_area and any(v[2] is None for v in parsed.values()):
        raise ReportParseError(p, "some modules have an 'area' and others do not")

    design = data.get("design")
    if design is None:
        modules = {n: YosysModule(n, sum(v[0].values()), v[0], v[1], v[2], v[3], v[4], v[5])
                   for n, v in parsed.items()}
        return _single_module_design(p, "json", version, modules, has_area, ())
    if not isinstance(design, dict):
        raise ReportParseError(p, "'design' is not an object")

    instantiated = {s for v in parsed.values() for s in v[1]}
    tops = [n for n in parsed if n not in instantiated]
    if len(tops) != 1:
        raise ReportParseError(p, f"cannot tell the top module: {sorted(tops)} are not "
                               "instantiated by any other module")
    top = tops[0]
    d_leaf, _ = _json_types(p, "design", design, names)
    d_area = _json_opt_float(p, "design", design, "area")
    d_seq = _json_opt_float(p, "design", design, "sequential_area")
    if has_area and d_area is None:
        raise ReportParseError(p, "design: missing 'area'")
    local = _json_local_areas(p, parsed, top, d_area) if has_area else {}
    local_seq = (_json_local_areas(p, {n: (v[0], v[1], v[3]) for n, v in parsed.items()}, top,
                                   d_seq)
                 if has_area and d_seq is not None and all(v[3] is not None
                                                           for v in parsed.values()) else {})
    modules = {}
    for n, (leaf, subs, _area, _seq, wires, wire_bits) in parsed.items():
        modules[n] = YosysModule(n, sum(leaf.values()), leaf, subs, local.get(n),
                                 local_seq.get(n), wires, wire_bits)
    return YosysStat("json", version, top, has_area, modules, sum(d_leaf.values()), d_leaf,
                     d_area, d_seq, ())


def _json_types(p: str, where: str, m: Any, names: set[str]) -> tuple[dict[str, int],
                                                                       dict[str, int]]:
    if not isinstance(m, dict):
        raise ReportParseError(p, f"{where} is not an object")
    by_type = m.get("num_cells_by_type", {})
    if not isinstance(by_type, dict):
        raise ReportParseError(p, f"{where}.num_cells_by_type is not an object")
    num_cells = _json_int(p, where, m, "num_cells")
    leaf: dict[str, int] = {}
    subs: dict[str, int] = {}
    for k, v in by_type.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ReportParseError(p, f"{where}.num_cells_by_type[{k!r}] = {v!r}: expected a "
                                   "count >= 0")
        name = _strip_escape(k)
        (subs if name in names else leaf)[name] = v
    # 0.70 counts leaf cells only; 0.23 counts submodule instances too (modules, not 'design')
    if num_cells not in (sum(leaf.values()), sum(leaf.values()) + sum(subs.values())):
        raise ReportParseError(p, f"{where}: num_cells = {num_cells} does not match "
                               "num_cells_by_type")
    return leaf, subs


def _json_int(p: str, where: str, m: dict[str, Any], key: str) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ReportParseError(p, f"{where}: missing integer '{key}'")
    if v < 0:
        raise ReportParseError(p, f"{where}.{key} = {v}: expected a count >= 0")
    return v


def _json_opt_float(p: str, where: str, m: dict[str, Any], key: str) -> float | None:
    if key not in m:
        return None
    v = m[key]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
        raise ReportParseError(p, f"{where}.{key} = {v!r}: expected a number >= 0")
    return float(v)


def _json_local_areas(p: str, parsed: Mapping[str, tuple[Any, ...]], top: str,
                      total: float | None) -> dict[str, float]:
    """Per-module areas of the leaf cells only.

    Yosys 0.70 gives each module's area *including* its submodules (its text output gives the
    local area); other releases may give the local area. The reading that reproduces the
    design total is taken; if neither does, the report is inconsistent.
    """
    given = {n: v[2] for n, v in parsed.items()}
    subs = {n: v[1] for n, v in parsed.items()}

    def hier_from_local(n: str, local: Mapping[str, float]) -> float:
        return local[n] + sum(c * hier_from_local(s, local) for s, c in subs[n].items())

    as_hier = {n: given[n] - sum(c * given[s] for s, c in subs[n].items()) for n in given}
    for local in (as_hier, given):
        if total is not None and math.isclose(hier_from_local(top, local), total,
                                              rel_tol=1e-9, abs_tol=1e-6):
            return {n: float(v) for n, v in local.items()}
    raise ReportParseError(p, f"module areas do not add up to the design area {total}")


# ==================================================================================================
# OpenSTA
# ==================================================================================================
@dataclass(frozen=True)
class TimingPath(_Metrics):
    startpoint: str
    endpoint: str
    path_group: str
    #: "max" (setup) or "min" (hold)
    path_type: str
    #: ns (the liberty's time unit)
    data_arrival: float
    data_required: float
    slack: float
    #: True for "slack (MET)", False for "slack (VIOLATED)"
    met: bool


@dataclass(frozen=True)
class StaChecks(_Metrics):
    """OpenSTA ``report_checks``: every reported path, in report order."""

    paths: tuple[TimingPath, ...]

    def worst(self, path_type: str = "max") -> TimingPath:
        """The path with the least slack among those of ``path_type``."""
        cands = [x for x in self.paths if x.path_type == path_type]
        if not cands:
            raise LookupError(f"no {path_type} paths in the report")
        return min(cands, key=lambda x: x.slack)

    @property
    def met(self) -> bool:
        return all(x.met for x in self.paths)


@dataclass(frozen=True)
class PowerGroup(_Metrics):
    """One row of ``report_power``, in W."""

    internal_w: float
    switching_w: float
    leakage_w: float
    total_w: float


@dataclass(frozen=True)
class StaPower(_Metrics):
    """OpenSTA ``report_power`` design summary (the last one in the file)."""

    #: Sequential, Combinational, (Clock,) Macro, Pad - as the report lists them
    groups: dict[str, PowerGroup]
    total: PowerGroup


@dataclass(frozen=True)
class StaLog(_Metrics):
    """A file holding both ``report_checks`` and ``report_power`` output."""

    checks: StaChecks
    power: StaPower


_STA_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


def parse_sta_checks(text: str, path: str | Path = "<text>") -> StaChecks:
    """OpenSTA ``report_checks`` in the full format (the default), any fields or digits."""
    p = str(path)
    starts = [m.start() for m in re.finditer(r"^Startpoint: ", text, re.M)]
    if not starts:
        if re.search(r"^No paths found\.", text, re.M):
            raise ReportParseError(p, "no timing paths ('No paths found.'): create a clock and "
                                   "set_input_delay/set_output_delay")
        raise ReportParseError(p, "no 'Startpoint:' path reports (report_checks -format full)")
    paths = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        paths.append(_sta_path(p, i + 1, text[s:end]))
    return StaChecks(tuple(paths))


def _sta_path(p: str, index: int, block: str) -> TimingPath:
    def field(label: str) -> str:
        m = re.search(rf"^{label}: (\S+)", block, re.M)
        if not m:
            raise ReportParseError(p, f"path {index}: missing '{label}:' (truncated?)")
        return m.group(1)

    where = f"path {index} ({field('Startpoint')} -> {field('Endpoint')})"
    if "(Path is unconstrained)" in block:
        raise ReportParseError(p, f"{where} is unconstrained: no required time or slack "
                               "(create a clock and set_input_delay/set_output_delay)")

    def value(label: str) -> float:
        m = re.search(rf"{_STA_NUM}[ \t]+{label}[ \t]*$", block, re.M)
        if not m:
            raise ReportParseError(p, f"{where}: missing '{label}' (truncated?)")
        return _to_float(p, m.group(1), f"{where} {label}")

    arrival = value("data arrival time")
    required = value("data required time")
    m = re.search(rf"{_STA_NUM}[ \t]+slack \((MET|VIOLATED)\)", block)
    if not m:
        raise ReportParseError(p, f"{where}: missing 'slack (MET|VIOLATED)' (truncated?)")
    path_type = field("Path Type")
    if path_type not in ("max", "min"):
        raise ReportParseError(p, f"{where}: Path Type {path_type!r}: expected max or min")
    return TimingPath(field("Startpoint"), field("Endpoint"), field("Path Group"), path_type,
                      arrival, required, _to_float(p, m.group(1), f"{where} slack"),
                      m.group(2) == "MET")


_POWER_HEAD = re.compile(r"^Group[ \t]+Internal[ \t]+Switching[ \t]+Leakage[ \t]+Total[ \t]*$",
                         re.M)
_POWER_ROW = re.compile(rf"^(\w[\w ]*?)\s+{_STA_NUM}\s+{_STA_NUM}\s+{_STA_NUM}\s+{_STA_NUM}"
                        r"\s+[\d.]+%\s*$")


def parse_sta_power(text: str, path: str | Path = "<text>") -> StaPower:
    """OpenSTA ``report_power`` (the design summary table; the last one if there are several)."""
    p = str(path)
    heads = list(_POWER_HEAD.finditer(text))
    if not heads:
        raise ReportParseError(p, "no report_power table ('Group Internal Switching Leakage "
                               "Total' header)")
    rest = text[heads[-1].end():].splitlines()
    if len(rest) < 2 or not re.match(r"^\s+Power\s+Power\s+Power\s+Power", rest[1]):
        raise ReportParseError(p, "report_power: missing the 'Power Power Power Power' header "
                               "line (truncated?)")
    groups: dict[str, PowerGroup] = {}
    total = None
    for line in rest[2:]:
        if re.match(r"^-{10,}\s*$", line) or not line.strip():
            continue
        m = _POWER_ROW.match(line)
        if not m:
            break
        name = m.group(1).strip()
        vals = [_to_float(p, m.group(k), f"report_power {name}") for k in range(2, 6)]
        for label, v in (("switching", vals[1]), ("leakage", vals[2])):
            if v < 0:
                raise ReportParseError(p, f"report_power {name} {label} = {v!r}: expected a "
                                       "power >= 0")
        row = PowerGroup(*vals)
        if name == "Total":
            total = row
            break
        groups[name] = row
    if total is None:
        raise ReportParseError(p, "report_power: missing the 'Total' row (truncated?)")
    if not groups:
        raise ReportParseError(p, "report_power: no group rows before 'Total'")
    return StaPower(groups, total)


def parse_sta_log(text: str, path: str | Path = "<text>") -> StaLog:
    return StaLog(parse_sta_checks(text, path), parse_sta_power(text, path))


# ==================================================================================================
# Vitis HLS / Vivado HLS csynth.xml
# ==================================================================================================
@dataclass(frozen=True)
class HlsCsynth(_Metrics):
    """The top function's estimates from ``csynth.xml``, normalized across tool versions."""

    tool_version: str | None  # ReportVersion/Version, e.g. "2022.2"
    top: str
    part: str
    target_clock_ns: float
    clock_uncertainty_ns: float | None
    estimated_clock_ns: float
    #: cycles; None when the tool reports "undef" (data-dependent loops)
    best_latency_cycles: int | None
    worst_latency_cycles: int | None
    interval_min_cycles: int | None
    interval_max_cycles: int | None
    lut: int
    ff: int
    #: ``DSP`` (Vitis) or ``DSP48E`` (Vivado HLS)
    dsp: int
    bram_18k: int
    #: None when the report has no URAM element (tool versions / parts without UltraRAM)
    uram: int | None


def parse_hls_csynth(text: str, path: str | Path = "<text>") -> HlsCsynth:
    """Vitis HLS / Vivado HLS ``csynth.xml`` (solution/syn/report/csynth.xml)."""
    p = str(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportParseError(p, f"not well-formed XML ({exc}; truncated?)") from exc
    if root.tag != "profile":
        raise ReportParseError(p, f"root element <{root.tag}>: expected <profile> of csynth.xml")

    def text_of(xpath: str, required: bool = True) -> str | None:
        el = root.find(xpath)
        if el is None or el.text is None or not el.text.strip():
            if required:
                raise ReportParseError(p, f"missing <{xpath.replace('/', '><')}>")
            return None
        return el.text.strip()

    def period(xpath: str) -> float:
        return _to_size(p, text_of(xpath) or "", xpath, positive=True)

    def cycles(xpath: str, required: bool = True) -> int | None:
        t = text_of(xpath, required)
        if t is None or t.lower() == "undef":
            return None
        return _to_count(p, t, xpath)

    def count(name: str) -> int:
        return _to_count(p, text_of(res + name) or "", res + name)

    unit = text_of("UserAssignments/unit", required=False)
    if unit is not None and unit != "ns":
        raise ReportParseError(p, f"UserAssignments/unit = {unit!r}: expected 'ns'")
    res = "AreaEstimates/Resources/"
    dsp_names = [n for n in ("DSP", "DSP48E") if root.find(res + n) is not None]
    if not dsp_names:
        raise ReportParseError(p, "missing <AreaEstimates><Resources><DSP> (or <DSP48E>)")
    uram = text_of(res + "URAM", required=False)
    unc = text_of("UserAssignments/ClockUncertainty", required=False)
    return HlsCsynth(
        tool_version=text_of("ReportVersion/Version", required=False),
        top=text_of("UserAssignments/TopModelName") or "",
        part=text_of("UserAssignments/Part") or "",
        target_clock_ns=period("UserAssignments/TargetClockPeriod"),
        clock_uncertainty_ns=None if unc is None else _to_size(p, unc, "ClockUncertainty"),
        estimated_clock_ns=period("PerformanceEstimates/SummaryOfTimingAnalysis/"
                                  "EstimatedClockPeriod"),
        best_latency_cycles=cycles("PerformanceEstimates/SummaryOfOverallLatency/"
                                   "Best-caseLatency"),
        worst_latency_cycles=cycles("PerformanceEstimates/SummaryOfOverallLatency/"
                                    "Worst-caseLatency"),
        interval_min_cycles=cycles("PerformanceEstimates/SummaryOfOverallLatency/Interval-min",
                                   required=False),
        interval_max_cycles=cycles("PerformanceEstimates/SummaryOfOverallLatency/Interval-max",
                                   required=False),
        lut=count("LUT"),
        ff=count("FF"),
        dsp=count(dsp_names[0]),
        bram_18k=count("BRAM_18K"),
        uram=None if uram is None else _to_count(p, uram, res + "URAM"),
    )


# ==================================================================================================
# Vivado report_utilization / report_power
# ==================================================================================================
@dataclass(frozen=True)
class VivadoUtilization(_Metrics):
    tool_version: str | None
    design: str | None
    device: str | None
    design_state: str | None
    #: Slice LUTs (7-series) / CLB LUTs (UltraScale)
    lut: int
    #: Slice Registers / CLB Registers (flip-flops and latches)
    registers: int
    #: Register as Flip Flop
    ff: int
    dsp: int
    #: Block RAM Tile (36 Kb tiles; can be fractional: a RAMB18 is half a tile)
    bram_tile: float
    #: None when the report has no URAM row (devices without UltraRAM)
    uram: int | None


def _vivado_header(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    rx = r"^\|[ \t]*(Tool Version|Design|Device|Design State)[ \t]*:[ \t]*(.*?)[ \t]*$"
    for m in re.finditer(rx, text, re.M):
        out.setdefault(m.group(1), m.group(2))
    return out


def _vivado_rows(text: str) -> dict[str, str]:
    """First occurrence of each table row name -> its first value column (``Used``)."""
    rows: dict[str, str] = {}
    for m in re.finditer(r"^\|[ \t]*([^|\n]*?)[ \t]*\|[ \t]*([^|\n]*?)[ \t]*\|", text, re.M):
        name = m.group(1).rstrip("*").strip()
        rows.setdefault(name, m.group(2))
    return rows


def parse_vivado_utilization(text: str, path: str | Path = "<text>") -> VivadoUtilization:
    """Vivado ``report_utilization`` (flat, not ``-hierarchical``)."""
    p = str(path)
    rows = _vivado_rows(text)

    def pick(*names: str) -> tuple[str, str]:
        for n in names:
            if n in rows:
                return n, rows[n]
        raise ReportParseError(p, f"missing the '{names[0]}' row"
                               + (f" (or '{names[1]}')" if len(names) > 1 else "")
                               + " (truncated?)")

    lut = pick("Slice LUTs", "CLB LUTs")
    regs = pick("Slice Registers", "CLB Registers")
    ff = pick("Register as Flip Flop")
    bram = pick("Block RAM Tile")
    dsp = pick("DSPs")
    head = _vivado_header(text)
    return VivadoUtilization(
        tool_version=head.get("Tool Version"),
        design=head.get("Design"),
        device=head.get("Device"),
        design_state=head.get("Design State"),
        lut=_to_count(p, lut[1], lut[0]),
        registers=_to_count(p, regs[1], regs[0]),
        ff=_to_count(p, ff[1], ff[0]),
        dsp=_to_count(p, dsp[1], dsp[0]),
        bram_tile=_to_size(p, bram[1], bram[0]),
        uram=_to_count(p, rows["URAM"], "URAM") if "URAM" in rows else None,
    )


@dataclass(frozen=True)
class VivadoPower(_Metrics):
    tool_version: str | None
    design: str | None
    device: str | None
    total_w: float
    dynamic_w: float
    static_w: float
    junction_temperature_c: float | None
    confidence: str | None


def parse_vivado_power(text: str, path: str | Path = "<text>") -> VivadoPower:
    """Vivado ``report_power`` (the ``1. Summary`` table)."""
    p = str(path)
    rows = _vivado_rows(text)

    def watts(name: str) -> float:
        if name not in rows:
            raise ReportParseError(p, f"missing the '{name}' row (truncated?)")
        m = re.match(_FLOAT, rows[name])
        if not m:
            raise ReportParseError(p, f"{name} = {rows[name]!r}: expected a number")
        return _to_size(p, m.group(0), name)

    tj = rows.get("Junction Temperature (C)")
    tj_m = re.match(_FLOAT, tj) if tj else None
    head = _vivado_header(text)
    return VivadoPower(
        tool_version=head.get("Tool Version"),
        design=head.get("Design"),
        device=head.get("Device"),
        total_w=watts("Total On-Chip Power (W)"),
        dynamic_w=watts("Dynamic (W)"),
        static_w=watts("Device Static (W)"),
        junction_temperature_c=_to_float(p, tj_m.group(0), "Junction Temperature") if tj_m
        else None,
        confidence=rows.get("Confidence Level"),
    )


# ==================================================================================================
# Detection
# ==================================================================================================
PARSERS: dict[str, Callable[[str, str | Path], Any]] = {
    KIND_YOSYS_STAT: parse_yosys_stat,
    KIND_YOSYS_STAT_JSON: parse_yosys_stat_json,
    KIND_STA_CHECKS: parse_sta_checks,
    KIND_STA_POWER: parse_sta_power,
    KIND_STA_LOG: parse_sta_log,
    KIND_HLS_CSYNTH: parse_hls_csynth,
    KIND_VIVADO_UTILIZATION: parse_vivado_utilization,
    KIND_VIVADO_POWER: parse_vivado_power,
}


def detect_kind(text: str, path: str | Path = "<text>") -> str:
    """The kind of report ``text`` is, from its content."""
    head = text.lstrip()
    if head.startswith("{"):
        if '"modules"' in text and ('"num_cells"' in text or "Yosys" in text[:400]):
            return KIND_YOSYS_STAT_JSON
    elif head.startswith("<"):
        if re.search(r"<profile\b", text[:2000]) and "<AreaEstimates" in text:
            return KIND_HLS_CSYNTH
        if re.search(r"<profile\b", text[:2000]):
            return KIND_HLS_CSYNTH  # truncated before AreaEstimates: let the parser say so
    else:
        if re.search(r"^\| Command\s*: report_utilization\b", text, re.M) or \
                "Utilization Design Information" in text:
            return KIND_VIVADO_UTILIZATION
        if re.search(r"^\| Command\s*: report_power\b", text, re.M) or \
                "Total On-Chip Power" in text:
            return KIND_VIVADO_POWER
        checks = bool(re.search(r"^Startpoint: ", text, re.M))
        power = bool(_POWER_HEAD.search(text))
        if checks and power:
            return KIND_STA_LOG
        if checks:
            return KIND_STA_CHECKS
        if power:
            return KIND_STA_POWER
        if re.search(r"^=== .+ ===\s*$", text, re.M) and (
                "Printing statistics" in text or "Number of cells:" in text
                or re.search(r"\+-+Local Count", text)):
            return KIND_YOSYS_STAT
    raise ReportParseError(path, "unknown report kind (known: " + ", ".join(KINDS) + ")")


def parse_text(text: str, path: str | Path = "<text>") -> tuple[str, Any]:
    kind = detect_kind(text, path)
    return kind, PARSERS[kind](text, path)


def parse_file(path: str | Path) -> tuple[str, Any]:
    """Detect the kind of the report at ``path`` and parse it: ``(kind, metrics)``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ReportParseError(p, f"cannot read: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise ReportParseError(p, "empty file")
    return parse_text(text, p)
