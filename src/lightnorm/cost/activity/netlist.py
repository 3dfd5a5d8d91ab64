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
    simple_rx = re.compile(r"[A-Za-z_][\w$]*(?:\[\d+\])?")
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
                        if simple_rx.fullmatch(conn):  # most pins: one net, as it is named
                            pins[pm.group(1)] = conn
                        elif conn:
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


class Propagation:
    """A netlist prepared for :meth:`run`: its nets numbered, its combinational cells levelized
    and grouped by (level, cell, output pin) with the numbers of their input nets.

    None of that depends on the activities, so it is done once per netlist and each pass
    (forward, backward) only gathers, evaluates and scatters arrays: the same arithmetic, in
    the same order, as a cell-by-cell evaluation.
    """

    def __init__(self, netlist: Netlist, lib: Liberty, clocks: Iterable[str] = ("clk",)) -> None:
        self.netlist = netlist
        rep = netlist.rep
        clocks = set(clocks)
        self.ids: dict[str, int] = {"1'b0": 0, "1'b1": 1}
        ids = self.ids

        def nid(net: str) -> int:
            r = rep(net)
            i = ids.get(r)
            if i is None:
                i = ids[r] = len(ids)
            return i

        self.inputs = [p for p in netlist.inputs if p not in clocks]
        self.input_ids = [nid(p) for p in self.inputs]
        # sequential outputs, in netlist order (a later source of the same net wins)
        self.ff_out: list[tuple[Instance, str, str]] = []
        comb: list[Instance] = []
        for inst in netlist.instances:
            cell = lib.cells.get(inst.cell)
            if cell is None:
                raise ValueError(f"cell {inst.cell} of instance {inst.name} is not in "
                                 f"{lib.path}")
            if cell.sequential:
                for pin in cell.outputs:
                    if pin in inst.pins:
                        self.ff_out.append((inst, pin, inst.pins[pin]))
            else:
                comb.append(inst)
        self.ff_ids = [nid(net) for _inst, _pin, net in self.ff_out]
        for inst, _pin, _net in self.ff_out:  # read by run(d_to_q_iterations > 0)
            if "D" in inst.pins:
                nid(inst.pins["D"])
        known = {0, 1, *self.input_ids, *self.ff_ids}

        tables: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
        driver: dict[int, tuple[Instance, str]] = {}
        for inst in comb:
            cell = lib.cells[inst.cell]
            for pin, fn in cell.outputs.items():
                if pin in inst.pins and fn and not cell.three_state:
                    driver[nid(inst.pins[pin])] = (inst, pin)
                    if (inst.cell, pin) not in tables:
                        tables[(inst.cell, pin)] = truth_table(fn, cell.inputs)
        #: per driven net: its cell's input nets in truth-table order; a pin the cell does
        #: not connect reads (0, 0), the constant 0's net (number 0: level 0, so it does not
        #: move a level either)
        ins: dict[int, list[int]] = {}
        for net, (inst, pin) in driver.items():
            pins = inst.pins
            ins[net] = [nid(pins[i]) if i in pins else 0 for i in tables[(inst.cell, pin)][0]]
        inputs_of = ins.__getitem__

        level: dict[int, int] = {}
        for start in driver:
            # iterative depth-first search: the level of a net is 1 + the deepest of its inputs
            stack = [(start, False)]
            on_path: set[int] = set()
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
                    raise ValueError(f"combinational loop through net {self._name(cur)}")
                on_path.add(cur)
                stack.append((cur, True))
                for i in inputs_of(cur):
                    if i not in level:
                        if i in on_path:
                            raise ValueError(f"combinational loop through net {self._name(i)}")
                        stack.append((i, False))
        by_level: dict[int, dict[tuple[str, str], list[int]]] = \
            defaultdict(lambda: defaultdict(list))
        for net, (inst, pin) in driver.items():
            if net not in known:
                by_level[level[net]][(inst.cell, pin)].append(net)
        #: per level (ascending), per (cell, pin): the truth table, the output nets and an
        #: (outputs x inputs) array of input nets
        self.groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        inputs_seen: set[int] = set()
        for lv in sorted(by_level):
            for (cname, pin), nets in by_level[lv].items():
                order, tt = tables[(cname, pin)]
                idx = np.array([ins[n] for n in nets], dtype=np.int64).reshape(len(nets),
                                                                                len(order))
                inputs_seen.update(idx.ravel().tolist())
                self.groups.append((tt, np.array(nets, dtype=np.int64), idx))
        #: inputs of evaluated cells that nothing drives: read as the default, counted once
        self.undriven = sorted(inputs_seen - known - set(driver))
        self.names = list(ids)

    def _name(self, net: int) -> str:
        return next(k for k, v in self.ids.items() if v == net)

    def run(self, sources: Mapping[str, tuple[float, float]],
            default: tuple[float, float] = (0.1, 0.5), d_to_q_iterations: int = 0) -> Activity:
        """Activity and duty of every net from ``sources`` (see :func:`propagate`)."""
        n = len(self.ids)
        act = np.zeros(n)
        duty = np.zeros(n)
        is_set = np.zeros(n, dtype=bool)
        duty[1] = 1.0
        is_set[:2] = True

        def set_src(i: int, a: float, d: float) -> None:
            d = min(1.0, max(0.0, d))
            act[i], duty[i] = _clamp(a, d), d
            is_set[i] = True

        n_in_ann = 0
        for p, i in zip(self.inputs, self.input_ids, strict=True):
            if p in sources:
                n_in_ann += 1
                set_src(i, *sources[p])
            else:
                set_src(i, *default)
        n_ff_ann = 0
        unannotated: list[tuple[Instance, str, str]] = []
        for (inst, pin, net), i in zip(self.ff_out, self.ff_ids, strict=True):
            if net in sources:
                n_ff_ann += 1
                set_src(i, *sources[net])
            else:
                set_src(i, *default)
                unannotated.append((inst, pin, net))
        undriven = len(self.undriven)
        if undriven:
            u = np.array(self.undriven, dtype=np.int64)
            act[u], duty[u] = default[0], default[1]
            is_set[u] = True
        self._evaluate(act, duty, is_set)
        if d_to_q_iterations and unannotated:
            for _ in range(d_to_q_iterations):
                for inst, _pin, net in unannotated:
                    d_net = inst.pins.get("D")
                    if d_net is None:
                        continue
                    di = self.ids[self.netlist.rep(d_net)]
                    if not is_set[di]:  # nothing drives it: read as the default
                        act[di], duty[di], is_set[di] = default[0], default[1], True
                        undriven += 1
                    qi = self.ids[self.netlist.rep(net)]
                    act[qi], duty[qi] = act[di], duty[di]
                self._evaluate(act, duty, is_set)
        keep = np.flatnonzero(is_set).tolist()
        names = self.names
        a_list, d_list = act.tolist(), duty.tolist()
        return Activity({names[i]: a_list[i] for i in keep}, {names[i]: d_list[i] for i in keep},
                        len(self.ff_out), n_ff_ann, len(self.inputs), n_in_ann, undriven)

    def _evaluate(self, act: np.ndarray, duty: np.ndarray, is_set: np.ndarray) -> None:
        for tt, outs, idx in self.groups:
            m, k = idx.shape
            is_set[outs] = True
            if k == 0:
                act[outs], duty[outs] = 0.0, float(tt[0])
                continue
            pa, pd = act[idx], duty[idx]
            # per input: P(prev, cur) for (0,0), (0,1), (1,0), (1,1)
            half = pa / 2.0
            joint = (np.clip(1.0 - pd - half, 0.0, 1.0), half, half,
                     np.clip(pd - half, 0.0, 1.0))
            out_p = np.zeros(m)
            out_t = np.zeros(m)
            for combo in itertools.product(range(4), repeat=k):
                prob = np.ones(m)
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
            d = np.minimum(1.0, np.maximum(0.0, out_p))
            act[outs] = np.maximum(0.0, np.minimum(out_t, 2.0 * np.minimum(d, 1.0 - d)))
            duty[outs] = d


def propagate(netlist: Netlist, lib: Liberty, sources: Mapping[str, tuple[float, float]],
              default: tuple[float, float] = (0.1, 0.5), d_to_q_iterations: int = 0,
              clocks: Iterable[str] = ("clk",)) -> Activity:
    """Activity and duty of every net from ``sources`` (net -> (activity, duty)).

    ``sources`` should cover the top-level inputs and the sequential cell outputs (OpenSTA net
    names). A source that is missing gets ``default``. With ``d_to_q_iterations > 0``,
    flip-flop outputs that are not in ``sources`` take the activity of their D net, iterated
    that many times (a vectorless estimate, used for the arithmetic units). Several passes
    over one netlist: :class:`Propagation` once, then its ``run`` per pass.
    """
    return Propagation(netlist, lib, clocks).run(sources, default, d_to_q_iterations)


def annotation_names(netlist: Netlist) -> list[tuple[str, str]]:
    """(name, representative net) of every net name of the netlist (aliases included) but the
    constants, sorted by name: what :func:`annotation_lines` writes a line for."""
    names: set[str] = set(netlist.inputs) | set(netlist.outputs) | set(netlist.alias)
    for inst in netlist.instances:
        names.update(inst.pins.values())
    rep = netlist.rep
    return [(nm, rep(nm)) for nm in sorted(names) if not nm.startswith("1'b")]


def annotation_lines(netlist: Netlist, activity: Activity,
                     names: list[tuple[str, str]] | None = None) -> list[str]:
    """``name<TAB>activity<TAB>duty`` for every net name of the netlist (aliases included);
    ``names``: :func:`annotation_names` of the netlist, when several passes share it."""
    act, duty = activity.act, activity.duty
    out = []
    for nm, r in annotation_names(netlist) if names is None else names:
        a = act.get(r)
        if a is not None:
            d = _snap(duty[r])
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
