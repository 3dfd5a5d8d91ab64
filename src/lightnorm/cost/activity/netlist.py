"""Liberty cells, the flat gate-level netlist Yosys writes, and activity propagation through it.

Why lightnorm propagates switching activity itself instead of leaving it to OpenSTA: the
OpenSTA build on these machines (Debian's 2019 ``opensta``) has no ``read_vcd``/``read_saif``,
and its own propagation overwrites every flip-flop output with the activity of the flip-flop's
D input (one D->Q pass from the input ports) - a simulated flip-flop activity set with
``::sta::set_power_pin_activity`` on a Q pin is silently replaced, and combinational logic is
never re-evaluated from it. Values set on pins *after* OpenSTA has propagated once (after a
first ``report_power``) are used as they are. So :mod:`lightnorm.cost.synth` lets OpenSTA
propagate once, then sets the activity and duty of every pin of the netlist from
:func:`propagate`:

* sources: top-level inputs and flip-flop (latch) outputs, from the RTL simulation (or given);
* every combinational cell output, in topological order, from its inputs, exactly under the
  usual assumptions of probabilistic power estimation - inputs spatially independent,
  zero delay (no glitches): each input is a two-state Markov chain over one clock cycle with
  ``P(1) = duty`` and ``P(toggle) = activity`` (so ``P(0->1) = P(1->0) = activity / 2``), and the
  output's ``P(1)`` and ``P(toggle)`` are summed over all ``4^k`` (previous, current) input
  combinations of the cell's liberty function. Unlike the usual transition-density formula it
  does not double-count simultaneous input toggles (an XOR of two random signals toggles with
  probability 1/2, not 1).

Activity is in toggles per clock cycle (OpenSTA's ``-activity`` unit), duty in [0, 1].
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from lightnorm.tools.netlist import _ID, CONST_NETS, Liberty, _bits, _tokens, sta_name

# ==================================================================================================
# Liberty
# ==================================================================================================


# --- liberty boolean functions ----------------------------------------------------------------
_FTOK = re.compile(r"\s*(?:(\w+)|(.))")


Expr = tuple  # ("var", name) | ("const", 0/1) | ("not", e) | ("and"|"or"|"xor", e, e)


def _eval(e: Expr, v: Mapping[str, int]) -> int:
    op = e[0]
    if op == "var":
        return v[e[1]]
    if op == "const":
        return int(e[1])
    if op == "not":
        return 1 - _eval(e[1], v)
    a, b = _eval(e[1], v), _eval(e[2], v)
    return a & b if op == "and" else (a | b if op == "or" else a ^ b)


def compile_function(text: str) -> tuple[tuple[str, ...], Callable[[Mapping[str, int]], int]]:
    """A liberty ``function`` -> (its input pins, a function of {pin: 0/1} -> 0/1).

    Operators: ``!`` and postfix ``'`` (not), ``*``/``&``/juxtaposition (and), ``^`` (xor),
    ``+``/``|`` (or), parentheses, constants ``0``/``1``.
    """
    toks: list[str] = []
    for m in _FTOK.finditer(text):
        t = m.group(1) or m.group(2)
        if t and not t.isspace():
            toks.append(t)
    pos = 0
    names: list[str] = []

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        t = toks[pos]
        pos += 1
        return t

    def starts_operand(t: str | None) -> bool:
        return t is not None and (t in ("!", "(") or re.fullmatch(r"\w+", t) is not None)

    def primary() -> Expr:
        t = peek()
        if t is None:
            raise ValueError(f"function {text!r}: unexpected end")
        e: Expr
        if t == "!":
            take()
            e = ("not", primary())
        elif t == "(":
            take()
            e = expr_or()
            if peek() != ")":
                raise ValueError(f"function {text!r}: missing ')'")
            take()
        elif t in ("0", "1"):
            take()
            e = ("const", int(t))
        elif re.fullmatch(r"\w+", t):
            take()
            if t not in names:
                names.append(t)
            e = ("var", t)
        else:
            raise ValueError(f"function {text!r}: unexpected {t!r}")
        while peek() == "'":
            take()
            e = ("not", e)
        return e

    def expr_and() -> Expr:
        e = primary()
        while True:
            t = peek()
            if t in ("*", "&"):
                take()
                e = ("and", e, primary())
            elif starts_operand(t):
                e = ("and", e, primary())  # juxtaposition
            else:
                return e

    def expr_xor() -> Expr:
        e = expr_and()
        while peek() == "^":
            take()
            e = ("xor", e, expr_and())
        return e

    def expr_or() -> Expr:
        e = expr_xor()
        while peek() in ("+", "|"):
            take()
            e = ("or", e, expr_xor())
        return e

    tree = expr_or()
    if pos != len(toks):
        raise ValueError(f"function {text!r}: trailing {toks[pos:]!r}")

    def fn(v: Mapping[str, int]) -> int:
        return _eval(tree, v)

    return tuple(names), fn


def truth_table(text: str, pins: Iterable[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Inputs the function uses (in ``pins`` order) and its truth table over them (index bit i =
    input i)."""
    used, fn = compile_function(text)
    order = tuple(p for p in pins if p in used) + tuple(u for u in used if u not in pins)
    k = len(order)
    tt = np.zeros(1 << k, dtype=np.uint8)
    for idx in range(1 << k):
        tt[idx] = fn({p: (idx >> i) & 1 for i, p in enumerate(order)})
    return order, tt


# ==================================================================================================
# The flat netlist (Yosys write_verilog -noattr -noexpr, after splitnets -ports)
# ==================================================================================================


@dataclass
class Instance:
    name: str
    cell: str
    #: pin -> net (OpenSTA spelling), constants as "1'b0" / "1'b1"
    pins: dict[str, str]


@dataclass
class Netlist:
    top: str
    inputs: list[str]
    outputs: list[str]
    instances: list[Instance]
    #: net -> representative net (after ``assign a = b``), constants "1'b0"/"1'b1"
    alias: dict[str, str] = field(default_factory=dict)

    def rep(self, net: str) -> str:
        seen = []
        while net in self.alias and self.alias[net] != net:
            seen.append(net)
            net = self.alias[net]
        for s in seen:
            self.alias[s] = net
        return net


def read_netlist(text: str) -> Netlist:
    """The single flat module of a Yosys netlist: ports, cell instances, assigns (aliases)."""
    top = None
    inputs: list[str] = []
    outputs: list[str] = []
    insts: list[Instance] = []
    alias: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    n = len(lines)
    inst_head = re.compile(r"^\s*([A-Za-z_][\w$]*)\s+(" + _ID + r")\s*\(\s*$")
    pin_rx = re.compile(r"^\s*\.(\w+)\((.*)\),?\s*$")
    while i < n:
        line = lines[i]
        s = line.strip()
        if s.startswith("module "):
            m = re.match(r"module\s+(" + _ID + r")", s + " ")
            top = sta_name(m.group(1)) if m else None
        elif s.startswith("input ") or s.startswith("output "):
            m = re.match(r"(input|output)\s+(?:wire\s+)?(?:\[[^\]]*\]\s*)?(.*?)\s*;$", s)
            if m:
                (inputs if m.group(1) == "input" else outputs).append(sta_name(m.group(2)))
        elif s.startswith("assign "):
            m = re.match(r"assign\s+(.*?)\s*=\s*(.*?)\s*;$", s)
            if m:
                lhs = _bits(_tokens(m.group(1)))
                rhs = _bits(_tokens(m.group(2)))
                for a, b in zip(lhs, rhs, strict=False):
                    alias[a] = b
        else:
            m = inst_head.match(line)
            if m and m.group(1) not in ("module", "wire", "input", "output", "reg", "assign"):
                cell, name = m.group(1), sta_name(m.group(2))
                pins: dict[str, str] = {}
                i += 1
                while i < n and not lines[i].strip().startswith(");"):
                    pm = pin_rx.match(lines[i])
                    if pm:
                        conn = pm.group(2).strip()
                        if conn:
                            conn_bits = _bits(_tokens(conn))
                            if len(conn_bits) == 1:
                                pins[pm.group(1)] = conn_bits[0]
                    i += 1
                insts.append(Instance(name, cell, pins))
        i += 1
    if top is None:
        raise ValueError("no module in the netlist")
    for net, const in CONST_NETS.items():
        alias.setdefault(net, const)
    return Netlist(top, inputs, outputs, insts, alias)


# ==================================================================================================
# Activity propagation
# ==================================================================================================


@dataclass(frozen=True)
class Activity:
    """Toggles per cycle and fraction of cycles high, per net (representative names)."""

    act: dict[str, float]
    duty: dict[str, float]
    #: flip-flop outputs (sequential cell outputs) and how many of them were given
    ff_outputs: int
    ff_annotated: int
    inputs: int
    inputs_annotated: int
    #: nets whose driver is neither a source nor a liberty function (left at the default)
    undriven: int


def _clamp(a: float, p: float) -> float:
    return max(0.0, min(a, 2.0 * min(p, 1.0 - p)))


def propagate(netlist: Netlist, lib: Liberty, sources: Mapping[str, tuple[float, float]],
              default: tuple[float, float] = (0.1, 0.5), d_to_q_iterations: int = 0,
              clocks: Iterable[str] = ("clk",)) -> Activity:
    """Activity and duty of every net from ``sources`` (net -> (activity, duty)).

    ``sources`` should cover the top-level inputs and the sequential cell outputs (OpenSTA net
    names). A source that is missing gets ``default``. With ``d_to_q_iterations > 0``,
    flip-flop outputs that are not in ``sources`` take the activity of their D net, iterated
    that many times (a vectorless estimate, used for the arithmetic units).
    """
    clocks = set(clocks)
    act: dict[str, float] = {}
    duty: dict[str, float] = {}
    rep = netlist.rep
    for c, v in (("1'b0", 0.0), ("1'b1", 1.0)):
        act[c], duty[c] = 0.0, v

    def set_src(net: str, a: float, d: float) -> None:
        r = rep(net)
        d = min(1.0, max(0.0, d))
        act[r], duty[r] = _clamp(a, d), d

    n_in = n_in_ann = 0
    for p in netlist.inputs:
        if p in clocks:
            continue
        n_in += 1
        if p in sources:
            n_in_ann += 1
            set_src(p, *sources[p])
        else:
            set_src(p, *default)
    # sequential outputs
    seq = lib.sequential_cells
    ff_out: list[tuple[Instance, str, str]] = []  # (inst, pin, net)
    comb: list[Instance] = []
    for inst in netlist.instances:
        cell = lib.cells.get(inst.cell)
        if cell is None:
            raise ValueError(f"cell {inst.cell} of instance {inst.name} is not in {lib.path}")
        if cell.sequential:
            for pin in cell.outputs:
                if pin in inst.pins:
                    ff_out.append((inst, pin, inst.pins[pin]))
        else:
            comb.append(inst)
    n_ff_ann = 0
    unannotated: list[tuple[Instance, str, str]] = []
    for inst, pin, net in ff_out:
        if net in sources:
            n_ff_ann += 1
            set_src(net, *sources[net])
        else:
            set_src(net, *default)
            unannotated.append((inst, pin, net))
    del seq

    # combinational cells: levelize, then evaluate level by level, grouped by (cell, pin)
    tables: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
    driver: dict[str, tuple[Instance, str]] = {}
    for inst in comb:
        cell = lib.cells[inst.cell]
        for pin, fn in cell.outputs.items():
            if pin in inst.pins and fn and not cell.three_state:
                driver[rep(inst.pins[pin])] = (inst, pin)
                if (inst.cell, pin) not in tables:
                    tables[(inst.cell, pin)] = truth_table(fn, cell.inputs)
    known = set(act)
    level: dict[str, int] = {}

    def inputs_of(net: str) -> list[str]:
        inst, pin = driver[net]
        order, _ = tables[(inst.cell, pin)]
        return [rep(inst.pins[i]) for i in order if i in inst.pins]

    def lvl(start: str) -> None:
        # iterative depth-first search: the level of a net is 1 + the deepest of its inputs
        stack = [(start, False)]
        on_path: set[str] = set()
        while stack:
            cur, expanded = stack.pop()
            if cur in level:
                continue
            if cur in known or cur not in driver:
                level[cur] = 0
                continue
            if expanded:
                level[cur] = 1 + max((level[i] for i in inputs_of(cur)), default=0)
                on_path.discard(cur)
                continue
            if cur in on_path:
                raise ValueError(f"combinational loop through net {cur}")
            on_path.add(cur)
            stack.append((cur, True))
            for i in inputs_of(cur):
                if i not in level:
                    if i in on_path:
                        raise ValueError(f"combinational loop through net {i}")
                    stack.append((i, False))

    for net in driver:
        lvl(net)
    by_level: dict[int, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for net, (inst, pin) in driver.items():
        if net in known:
            continue
        by_level[level[net]][(inst.cell, pin)].append(net)

    undriven = 0

    def value(net: str) -> tuple[float, float]:
        nonlocal undriven
        r = rep(net)
        if r not in act:
            undriven += 1
            act[r], duty[r] = default[0], default[1]
        return act[r], duty[r]

    def evaluate(levels: dict[int, dict[tuple[str, str], list[str]]]) -> None:
        for lv in sorted(levels):
            for (cname, pin), nets in levels[lv].items():
                order, tt = tables[(cname, pin)]
                k = len(order)
                if k == 0:
                    for net in nets:
                        act[net], duty[net] = 0.0, float(tt[0])
                    continue
                pa = np.empty((len(nets), k))
                pd = np.empty((len(nets), k))
                for j, net in enumerate(nets):
                    inst, _ = driver[net]
                    for i, ip in enumerate(order):
                        a, d = value(inst.pins[ip]) if ip in inst.pins else (0.0, 0.0)
                        pa[j, i], pd[j, i] = a, d
                # per input: P(prev, cur) for (0,0), (0,1), (1,0), (1,1)
                half = pa / 2.0
                p00 = np.clip(1.0 - pd - half, 0.0, 1.0)
                p01 = half
                p10 = half
                p11 = np.clip(pd - half, 0.0, 1.0)
                joint = (p00, p01, p10, p11)
                out_p = np.zeros(len(nets))
                out_t = np.zeros(len(nets))
                for combo in itertools.product(range(4), repeat=k):
                    prob = np.ones(len(nets))
                    prev_idx = cur_idx = 0
                    for i, c in enumerate(combo):
                        prob = prob * joint[c][:, i]
                        prev_idx |= (c >> 1) << i
                        cur_idx |= (c & 1) << i
                    fp, fc = tt[prev_idx], tt[cur_idx]
                    if fc:
                        out_p += prob
                    if fp != fc:
                        out_t += prob
                for j, net in enumerate(nets):
                    d = float(min(1.0, max(0.0, out_p[j])))
                    act[net], duty[net] = _clamp(float(out_t[j]), d), d

    evaluate(by_level)
    if d_to_q_iterations and unannotated:
        for _ in range(d_to_q_iterations):
            for inst, _pin, net in unannotated:
                d_net = inst.pins.get("D")
                if d_net is not None:
                    a, d = value(d_net)
                    act[rep(net)], duty[rep(net)] = a, d
            evaluate(by_level)
    return Activity(act, duty, len(ff_out), n_ff_ann, n_in, n_in_ann, undriven)


def annotation_lines(netlist: Netlist, activity: Activity) -> list[str]:
    """``name<TAB>activity<TAB>duty`` for every net name of the netlist (aliases included)."""
    names: set[str] = set(netlist.inputs) | set(netlist.outputs) | set(netlist.alias)
    for inst in netlist.instances:
        names.update(inst.pins.values())
    out = []
    for nm in sorted(names):
        if nm.startswith("1'b"):
            continue
        r = netlist.rep(nm)
        if r in activity.act:
            a, d = activity.act[r], _snap(activity.duty[r])
            a = 0.0 if a < 1e-9 else a
            out.append(f"{nm}\t{a:.6g}\t{d:.6g}")
    return out


def _snap(p: float, eps: float = 1e-9) -> float:
    """A duty with rounding residue (3e-16) to exactly 0 or 1: OpenSTA 2019's report_power turns
    a duty within rounding of 0 on a pin with activity 0 into NaN power (seen)."""
    return 0.0 if p < eps else 1.0 if p > 1.0 - eps else p


# ==================================================================================================
# High-fanout buffering
# ==================================================================================================
