"""Which declarations of the RTL the activity model traces (docs/synthesis.md).

Power needs the simulated activity of the flat netlist's flip-flop outputs and input ports
only (:func:`lightnorm.cost.activity.sources_for`): about a fifth of the bits of a design's
signals (fp32-baseline: 77 k of 405 k). Tracing every signal made Verilator's trace code
more than half of the activity model's C++. :func:`trace_control` writes a Verilator control file
that turns tracing off, declaration by declaration (``tracing_off -file F -lines A-B``), for
every declaration of the RTL that declares no variable the netlist can match.

A variable is kept per module: the netlist names a bit by its instance path
(``u_bwd.g_lane[3].u_dx.sig_5_``), the path is walked down the RTL's instances
(``u_bwd`` is an ``ln_bwd_lanes``, ``g_lane[3]`` a generate block in it, ``u_dx`` an instance
in that) to the module that declares it, and that module's declaration of ``sig`` stays traced
(in all its instances). Whatever this cannot read keeps its tracing: a declaration it does not
parse, a statement without its ``;``, two statements on one line, a variable below an instance
of a module it cannot find. The counts of a traced variable do not depend on which others are
traced, so the matched activities are the same as with everything traced
(``check_traced_activity`` in tests/test_synth.py compares them on a template and an XLS
design; docs/synthesis.md gives the figures).

(Not ``tracing_on -scope`` per variable: Verilator 5.48 resolved 1,074 such rules for
fp32-baseline in 72 s and 3.8 GB, 4,606 in 399 s and 16 GB.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lightnorm.codegen.rtl import instance_on

_MODULE = re.compile(r"^\s*module\s+([A-Za-z_]\w*)")
_ENDMODULE = re.compile(r"^\s*endmodule\b")
_PORT = re.compile(r"^\s*(input|output|inout)\b")
_DECL = re.compile(r"^\s*(wire|reg|logic|integer)\b")
_WORDS = {"input", "output", "inout", "wire", "reg", "logic", "integer", "signed", "unsigned"}
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_INDEX = re.compile(r"(\[\d+\])+$")
_DIMS = re.compile(r"(\s*\[[^\]]*\])+\s*$")
_BLOCK = re.compile(r"\bbegin\s*:\s*([A-Za-z_]\w*)")
_NEXT_ASSIGN = re.compile(r",\s*[A-Za-z_]\w*\s*(\[[^\]]*\]\s*)*=(?!=)")


@dataclass
class _Module:
    name: str
    file: str
    #: instance name -> module types (of modules defined in the design; two generate blocks
    #: may give one name to instances of two modules)
    instances: dict[str, set[str]] = field(default_factory=dict)
    #: labels of its named blocks (generate loops: ``begin : g_lane``)
    blocks: set[str] = field(default_factory=set)
    #: (first line, last line, declared names or None when not read)
    decls: list[tuple[int, int, list[str] | None]] = field(default_factory=list)


def without_index(name: str) -> str:
    """``name`` without its trailing element or generate-block indices (``mem[1]`` -> ``mem``,
    ``g_lane[3]`` -> ``g_lane``)."""
    return _INDEX.sub("", name)


def _code(line: str) -> str:
    return line.split("//", 1)[0]


def _names(text: str) -> list[str] | None:
    """The names one declaration statement declares (``wire [7:0] a, b = x;``), or None."""
    body = text.strip().rstrip(";").strip()
    while True:  # the leading keywords and the packed range
        m = re.match(r"^([A-Za-z_]\w*)\s*", body)
        if m and m.group(1) in _WORDS:
            body = body[m.end():]
            continue
        if body.startswith("["):
            end = body.find("]")
            if end < 0:
                return None
            body = body[end + 1:].lstrip()
            continue
        break
    lhs, eq, rhs = body.partition("=")
    if "(" in lhs or "{" in lhs:
        return None
    if eq and (_NEXT_ASSIGN.search(rhs) or "," in lhs):
        return None  # "wire a = x, b = y": not read
    out = []
    for piece in lhs.split(","):
        name = _DIMS.sub("", piece.strip().rstrip(")").strip())  # unpacked dimensions
        if not _IDENT.match(name):
            return None
        out.append(name)
    return out or None


def _parse(files: Mapping[str, str]) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    pending: list[tuple[_Module, str]] = []  # instance lines, resolved once all are known
    for fname in sorted(files):
        if not fname.endswith((".v", ".sv")):
            continue
        lines = files[fname].splitlines()
        cur: _Module | None = None
        i = 0
        while i < len(lines):
            code = _code(lines[i])
            m = _MODULE.match(code)
            if m:
                cur = modules.setdefault(m.group(1), _Module(m.group(1), fname))
                i += 1
                continue
            if cur is None:
                i += 1
                continue
            if _ENDMODULE.match(code):
                cur = None
                i += 1
                continue
            if _PORT.match(code):
                # one port per line: "input wire [7:0] a," (the list's last one without a comma)
                text = code.strip().rstrip(",").rstrip(");").strip()
                cur.decls.append((i + 1, i + 1, _names(text) if "," not in text else None))
                i += 1
                continue
            if _DECL.match(code):
                first, text = i, code
                while ";" not in text and i + 1 < len(lines) and i - first < 50:
                    i += 1
                    text += " " + _code(lines[i])
                stmt, semi, rest = text.partition(";")
                # a second statement on the line ("wire a; wire b;"): not read
                cur.decls.append((first + 1, i + 1,
                                  _names(stmt) if semi and not rest.strip() else None))
                i += 1
                continue
            pending.append((cur, code))
            i += 1
    for mod, code in pending:
        found = instance_on(code, modules)
        if found:
            mod.instances.setdefault(found[1], set()).add(found[0])
        mod.blocks.update(_BLOCK.findall(code))
    return modules


def _modules_of(modules: Mapping[str, _Module], top: str, scope: list[str]) -> set[str] | None:
    """The modules that may declare a variable in ``scope`` (components below ``top``), or
    None when a component is neither an instance nor a named block this reading found (an
    instance written over several lines, say: its variables are then kept everywhere)."""
    cur = {top}
    for comp in scope:
        name = without_index(comp)
        nxt: set[str] = set()
        for m in cur:
            mod = modules.get(m)
            if mod is None:
                return None
            if name in mod.instances:
                nxt |= mod.instances[name]
            elif name in mod.blocks:  # a generate block (g_lane[3]): declared in m's text
                nxt.add(m)
            else:
                return None
        cur = nxt
    return cur if all(m in modules for m in cur) else None


def trace_control(files: Mapping[str, str], top: str, variables: Iterable[str]) -> str:
    """A Verilator control file that traces, of ``files``, only declarations that may hold one
    of ``variables`` (paths relative to ``top``'s instance, as
    :func:`lightnorm.cost.activity.traced_variables` gives them) and those it cannot read."""
    modules = _parse(files)
    keep: dict[str, set[str]] = {}
    anywhere: set[str] = set()  # variables whose module is unknown: kept in every module
    for path in variables:
        parts = path.split(".")
        owners = _modules_of(modules, top, parts[:-1])
        if owners is None:
            anywhere.add(parts[-1])
        for owner in owners or ():
            keep.setdefault(owner, set()).add(parts[-1])
    lines = ["`verilator_config"]
    for mod in sorted(modules.values(), key=lambda m: (m.file, m.name)):
        wanted = keep.get(mod.name, set()) | anywhere
        for first, last, names in mod.decls:
            if names is None or any(n in wanted for n in names):
                continue
            span = f"{first}" if first == last else f"{first}-{last}"
            lines.append(f'tracing_off -file "*/{mod.file}" -lines {span}')
    return "\n".join(lines) + "\n"


__all__ = ["trace_control", "without_index"]
