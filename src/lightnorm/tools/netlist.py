"""Liberty cells and Yosys netlists the way the timing tools need them: the cells of a liberty
file, OpenSTA 2019's names for escaped identifiers, one ``assign`` per bit (its Verilog reader
has no concatenations on the left of an assign), constant pins on undriven nets, and buffer
trees on nets with a large fan-out (per-module ABC cannot buffer a module's inputs)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def sta_name(name: str) -> str:
    """A Verilog identifier as OpenSTA names it: escaped identifiers lose ``\\`` and the space."""
    name = name.strip()
    return name[1:] if name.startswith("\\") else name


_ID = r"(?:\\\S+\s|[A-Za-z_][\w$]*)"
_TOK = re.compile(r"\s*(\\\S+(?=\s|$)|[A-Za-z_][\w$]*(?:\[\d+\])?|\d+'[hHbBdD][0-9a-fA-FxXzZ_]+|"
                  r"[{},])")


def _tokens(s: str) -> list[str]:
    out: list[str] = []
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = _TOK.match(s, pos)
        if not m:
            raise ValueError(f"cannot read {s[pos:pos + 60]!r}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    return out


def _bits(tokens: list[str]) -> list[str]:
    """Concatenation tokens -> one entry per bit, MSB first; constants become 1'b0 / 1'b1."""
    res: list[str] = []
    for t in tokens:
        if t in "{},":
            continue
        m = re.fullmatch(r"(\d+)'([hHbBdD])([0-9a-fA-FxXzZ_]+)", t)
        if m:
            w, base, v = int(m.group(1)), m.group(2).lower(), m.group(3).replace("_", "")
            if base == "h":
                s = "".join(format(int(c, 16), "04b") if c not in "xXzZ" else "0000" for c in v)
            elif base == "b":
                s = "".join(c if c in "01" else "0" for c in v)
            else:
                s = format(int(v), "b")
            s = s.rjust(w, "0")[-w:]
            res += [f"1'b{c}" for c in s]
        else:
            res.append(sta_name(t))
    return res


def sta_compatible(text: str) -> str:
    """Rewrite Yosys ``assign {a, b} = {c, 2'h1};`` into one ``assign`` per bit: OpenSTA 2019's
    Verilog reader has no concatenations on the left of an assign."""

    def rep(m: re.Match[str]) -> str:
        lhs = _bits(_tokens(m.group(1)))
        rhs = _bits(_tokens(m.group(2)))
        if len(lhs) != len(rhs):
            raise ValueError(f"assign with {len(lhs)} bits on the left, {len(rhs)} on the right: "
                             f"{m.group(0)[:200]!r}")
        out = []
        for a, b in zip(lhs, rhs, strict=True):
            a_v = a if re.fullmatch(r"[A-Za-z_][\w$]*", a) else f"\\{a} "
            if b.startswith("1'b"):
                b_v = b
            else:
                b_v = b if re.fullmatch(r"[A-Za-z_][\w$]*", b) else f"\\{b} "
            out.append(f"  assign {a_v} = {b_v};\n")
        return "".join(out)

    return re.sub(r"^  assign (\{.*?\}|\S+ ?) = (.*?);\n", rep, text, flags=re.M)


@dataclass(frozen=True)
class LibCell:
    name: str
    area: float
    inputs: tuple[str, ...]
    #: output pin -> liberty function text ("" when the pin has none)
    outputs: dict[str, str]
    sequential: bool
    three_state: bool


@dataclass(frozen=True)
class Liberty:
    path: str
    cells: dict[str, LibCell]

    @property
    def sequential_cells(self) -> set[str]:
        return {n for n, c in self.cells.items() if c.sequential}

    def nand2(self) -> LibCell:
        """The smallest-drive two-input NAND (``NAND2X1`` in OSU; else the smallest NAND2)."""
        if "NAND2X1" in self.cells:
            return self.cells["NAND2X1"]
        cands = [c for c in self.cells.values()
                 if re.match(r"(?i)nand2", c.name) and len(c.inputs) == 2]
        if not cands:
            raise ValueError(f"{self.path}: no two-input NAND cell (for gate equivalents)")
        return min(cands, key=lambda c: c.area)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def canonical_module(text: str, name: str) -> str:
    """The Verilog text of module ``name`` as far as a tool's result depends on it: comments
    dropped (strings kept as they are), blank lines and trailing spaces gone, the module's own
    name replaced by a placeholder. Two modules that differ only in their descriptions or their
    names (a beat sum described for another block size, an exponent scan named after its
    block) synthesize alike, so a cache keyed by this text characterizes them once."""
    token = re.compile(r'("(?:\\.|[^"\\\n])*")|//[^\n]*|/\*.*?\*/'
                       rf"|(?<![\w$\\]){re.escape(name)}(?![\w$])", re.S)

    def keep(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        return " " if m.group(0).startswith("/") else "\x00"

    code = token.sub(keep, text)
    return "\n".join(line.rstrip() for line in code.splitlines() if line.strip())


def read_liberty(path: str | Path) -> Liberty:
    """Cells of a liberty file: area, input and output pins, output functions, sequential."""
    text = _strip_comments(Path(path).read_text(encoding="utf-8", errors="replace"))
    cells: dict[str, LibCell] = {}
    tok = re.compile(r"(\w+)\s*\(\s*([^)]*?)\s*\)\s*\{|\}|(\w+)\s*:\s*(\"[^\"]*\"|[^;]*?)\s*;")
    # a stack of (group, name) while walking the group structure
    stack: list[tuple[str, str]] = []
    cur: dict[str, Any] | None = None
    pin: dict[str, str] | None = None
    for m in tok.finditer(text):
        if m.group(1):
            group, name = m.group(1), m.group(2).strip().strip('"')
            stack.append((group, name))
            if group == "cell" and len(stack) == 2:
                cur = {"name": name, "area": 0.0, "pins": [], "seq": False}
            elif cur is not None and group in ("ff", "latch", "ff_bank", "latch_bank",
                                               "statetable"):
                cur["seq"] = True
            elif cur is not None and group == "pin" and len(stack) == 3:
                pin = {"name": name, "direction": "", "function": "", "three_state": ""}
        elif m.group(0) == "}":
            if not stack:
                continue
            group, _ = stack.pop()
            if group == "pin" and pin is not None and len(stack) == 2 and cur is not None:
                cur["pins"].append(pin)
                pin = None
            elif group == "cell" and cur is not None and len(stack) == 1:
                pins = cur["pins"]
                ins = tuple(p["name"] for p in pins if p["direction"] == "input")
                outs = {p["name"]: p["function"] for p in pins
                        if p["direction"] in ("output", "inout")}
                tri = any(p["three_state"] for p in pins)
                cells[str(cur["name"])] = LibCell(str(cur["name"]), float(cur["area"]),
                                                  ins, outs, bool(cur["seq"]), tri)
                cur = None
        else:
            key, val = m.group(3), m.group(4).strip().strip('"')
            if pin is not None and len(stack) == 3:
                if key in ("direction", "function", "three_state"):
                    pin[key] = val
            elif cur is not None and len(stack) == 2 and key == "area":
                try:
                    cur["area"] = float(val)
                except ValueError:
                    pass
    if not cells:
        raise ValueError(f"{path}: no cells found (not a liberty file?)")
    return Liberty(str(path), cells)


#: undriven nets that stand for constants in the netlist OpenSTA reads (:func:`float_constants`)
CONST_NETS = {"ln_const0_": "1'b0", "ln_const1_": "1'b1"}


def float_constants(text: str) -> str:
    """Connect cell pins tied to a constant (``.A(1'h0)``) to an undriven net of
    :data:`CONST_NETS` instead.

    OpenSTA 2019's ``report_power`` crashes (segmentation fault) on some netlists with constant
    pin connections - seen on designs mapped per module (the ``hier`` flow), where ABC cannot
    fold constants across module boundaries - also when the constant comes through an
    ``assign``; with an undriven net it does not (driving them from a port by tie logic was
    tried: NaN power on other netlists). OpenSTA then does not know these nets are constant:
    paths through logic they feed count in timing. For power, :func:`read_netlist` reads them
    as the constants they stand for, so they are annotated with activity 0 like any constant.
    """
    rx = re.compile(r"^(\s*\.\w+\()\s*1'[hb]([01])\s*(\),?\s*)$", re.M)
    out = rx.sub(lambda m: f"{m.group(1)}ln_const{m.group(2)}_{m.group(3)}", text)
    if out == text:
        return text
    head_end = re.search(r"^module\b.*?\);\n", out, re.M | re.S)
    if head_end is None:
        raise ValueError("no module header in the netlist")
    decl = "".join(f"  wire {n};\n" for n in CONST_NETS)
    return out[:head_end.end()] + decl + out[head_end.end():]


def buffer_cell(lib: Liberty) -> LibCell:
    """The strongest non-inverting single-input buffer of the library (by area; BUFX4 in OSU)."""
    cands = [c for c in lib.cells.values()
             if not c.sequential and len(c.inputs) == 1 and len(c.outputs) == 1
             and re.fullmatch(r"\(?\s*" + re.escape(c.inputs[0]) + r"\s*\)?",
                              next(iter(c.outputs.values())) or "")
             and not re.match(r"(?i)clk", c.name)]
    if not cands:
        raise ValueError(f"{lib.path}: no buffer cell")
    return max(cands, key=lambda c: c.area)


def buffer_fanout(text: str, lib: Liberty, max_fanout: int = 8,
                  exclude: Iterable[str] = ("clk",)) -> tuple[str, int, float]:
    """Insert buffer trees on nets driving more than ``max_fanout`` cell inputs.

    Yosys's per-module ABC buffering cannot see a module's input port fanning out inside it, nor
    a net that crosses module boundaries once the mapped design is flattened; OpenSTA would see
    such a net drive hundreds of pins from one cell. Each such net gets a tree of the library's
    buffer (:func:`buffer_cell`) with at most ``max_fanout`` loads per driver. ``exclude``: nets
    left alone (the ideal clock). Returns (netlist text, buffers added, their area).
    """
    excluded = {sta_name(e) for e in exclude}
    buf = buffer_cell(lib)
    b_in, b_out = buf.inputs[0], next(iter(buf.outputs))
    lines = text.splitlines(keepends=True)
    inst_head = re.compile(r"^\s*([A-Za-z_][\w$]*)\s+(" + _ID + r")\s*\(\s*$")
    pin_rx = re.compile(r"^(\s*\.)(\w+)\((.*)\)(,?\s*)$")
    # load pins: (line index, raw connection) grouped by the net name as OpenSTA spells it
    loads: dict[str, list[int]] = defaultdict(list)
    raw_of: dict[str, str] = {}
    end_line = None
    cur_cell: LibCell | None = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("endmodule"):
            end_line = i
            continue
        m = inst_head.match(line)
        if m and m.group(1) not in ("module", "wire", "input", "output", "reg", "assign"):
            cur_cell = lib.cells.get(m.group(1))
            continue
        if s.startswith(");"):
            cur_cell = None
            continue
        if cur_cell is None:
            continue
        pm = pin_rx.match(line.rstrip("\n"))
        if not pm or pm.group(2) not in cur_cell.inputs:
            continue
        conn = pm.group(3).strip()
        if not conn or conn.startswith("{") or "'" in conn:
            continue
        net = sta_name(conn)
        if net in excluded:
            continue
        loads[net].append(i)
        raw_of[net] = conn + " " if conn.startswith("\\") else conn
    if end_line is None:
        raise ValueError("no endmodule in the netlist")
    new_wires: list[str] = []
    new_cells: list[str] = []
    area = 0.0
    count = 0
    for net, idxs in loads.items():
        if len(idxs) <= max_fanout:
            continue
        # level by level: group the current loads under buffers until the net drives few enough
        pending: list[tuple[str, int]] = [("pin", i) for i in idxs]
        while len(pending) > max_fanout:
            nxt: list[tuple[str, int]] = []
            for k in range(0, len(pending), max_fanout):
                wire = f"lnbuf_{count}_"
                new_wires.append(f"  wire {wire};\n")
                new_cells.append(f"  {buf.name} lnbuf_cell_{count}_ (\n"
                                 f"    .{b_in}(@@SRC{count}@@),\n"
                                 f"    .{b_out}({wire})\n  );\n")
                for kind, ref in pending[k:k + max_fanout]:
                    if kind == "pin":
                        pm2 = pin_rx.match(lines[ref].rstrip("\n"))
                        assert pm2 is not None
                        lines[ref] = (f"{pm2.group(1)}{pm2.group(2)}({wire}){pm2.group(4)}"
                                      "\n")
                    else:
                        new_cells[ref] = new_cells[ref].replace(f"@@SRC{ref}@@", wire)
                nxt.append(("buf", count))
                count += 1
                area += buf.area
            pending = nxt
        for kind, ref in pending:
            if kind == "buf":
                new_cells[ref] = new_cells[ref].replace(f"@@SRC{ref}@@", raw_of[net])
    out = lines[:end_line] + new_wires + new_cells + lines[end_line:]
    return "".join(out), count, area
