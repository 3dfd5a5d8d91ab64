"""The XLS backend of ``lightnorm_top``: the template design with XLS-generated logic put into
its extension points (docs/xls.md).

``render_xls_rtl(spec)`` renders the template design (:func:`lightnorm.codegen.rtl.render_design`:
the stable ``lightnorm_top`` wrapper, the controller, the stream handshakes, the lane pipelines,
accumulators, block buffers) with these modules overridden (:class:`lightnorm.codegen.rtl.Override`:
a template under ``templates/rtl/xls/`` that ``extends`` the module's own and replaces blocks):

* ``fp_add_*``, ``fp_mul_*`` (also the mixed-format ``fp_mul_<in>_to_<out>``) and ``fp_cvt_*``,
  the BFP beat sums of the statistics ``ln_bfp_beat_*`` and the beat dot products of the
  BFP-native backward ``ln_bfp_dot_*`` (option ``statistics``) and the BFP
  encoders' exponent scan ``bfp_scan_*`` and quantizer ``bfp_quant_*`` (option ``codec``): the
  unit template with its ``body`` block an instance of XLS's **combinational** module
  (``xls_<function>``: no clock, no registers; ``xls/unit.v.j2``), so the adapter keeps the
  template module's name and port list and the shell's pipeline registers (its timing and cycle
  count) are unchanged;
* ``ln_finalize`` (option ``finalize``): its ``body`` runs the forward and backward programs as
  two XLS **pipelines** at the spec's clock (``sky130`` delay model) behind the template's ports
  and start/done handshake (``xls/ln_finalize.v.j2``). With ``finalize="template"`` the
  sequencer stays and its ``fp_recip_*``/``fp_sqrt_*`` bodies become XLS pipelines behind the
  iterative units' handshake (``iterative="template"`` keeps those too);
* the lane pipelines ``ln_fwd_lanes``/``ln_bwd_lanes`` (``xls/ln_*_lanes.v.j2``): the template's
  register stages, handshakes, port lists and output encoders, whose per-lane arithmetic blocks
  are the XLS normalize lane (``norm_lane``: ``y = add(mul(x, scale), shift)``; in the centered
  normalize form its ``x`` is ``x - mu`` from the template's lane stage and ``shift`` is beta)
  and dx lane (``dx_lane``), and whose x/dy decoder blocks are XLS ``bfp_cvt`` (BFP storage)
  or ``cvt`` (FP storage), each a combinational XLS module behind a generated per-lane module
  (``xls/lane.v.j2``: ``ln_norm_lane``, ``ln_dx_lane``, ``ln_x_to_p``, ``ln_dy_to_p``,
  ``ln_dy_to_a``). ``lanes="template"`` / ``decode="template"`` keep the template's.

Template helper modules that only the replaced modules used (``fp_round_*``, ``ln_lzc_w*``,
...) drop out of the design; the rest of the shell (the BFP encoders' block buffers, the tree
accumulators, the range-BN extrema unit with its decoders, the top, and in the lanes x - mu and
x_hat with XLS operators) stays template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightnorm.codegen import rtl
from lightnorm.codegen.dslx import DslxModule, Functions, Unit, finalize_io, spec_exponent_width
from lightnorm.codegen.dslx_design import STORAGE_DSLX
from lightnorm.spec import FPFormat, Spec
from lightnorm.spec.formats import FPView
from lightnorm.tools.xls import (
    DEFAULT_DELAY_MODEL,
    XLS_PACKAGE,
    CodegenOptions,
    Pipeline,
    combinational,
    pipeline,
    ports,
    xls_version,
)

from .base import Backend

MODULE = "lightnorm_xls_rtl"  # the DSLX module of the backend's functions
PREFIX = "xls_"
#: template -> unit kind of the template modules the backend replaces
REPLACED = {"fp_add.v.j2": "add", "fp_mul.v.j2": "mul", "fp_cvt.v.j2": "cvt",
            "fp_recip.v.j2": "recip", "fp_sqrt.v.j2": "sqrt"}
ITERATIVE = ("recip", "sqrt")
ITERATIVE_MODES = ("xls", "template")
#: the choice of every part option (lanes, decode, finalize, statistics, codec)
LANE_MODES = ("xls", "template")
#: option -> template modules (by their role in ``rtl_context``'s ``mods``) it puts a
#: combinational XLS function behind: the BFP beat sums of the statistics, and the streaming
#: BFP encoders' write-side exponent scan and read-side quantizer
PART_ROLES = {"statistics": ("x_beat_sum", "x_beat_sq", "dy_beat_sum"),
              "codec": ("y_enc_scan", "y_enc_quant", "dx_enc_scan", "dx_enc_quant")}
#: the overrides (templates/rtl/xls/): a unit's body around an XLS module; the lanes' decoder
#: and arithmetic blocks around the per-lane modules; the finalize's body around two pipelines
UNIT_OVERRIDE = "xls/unit.v.j2"
LANE_OVERRIDES = {"ln_fwd_lanes": "xls/ln_fwd_lanes.v.j2", "ln_bwd_lanes": "xls/ln_bwd_lanes.v.j2"}
FINALIZE_OVERRIDE = "xls/ln_finalize.v.j2"
#: a generated per-lane module around a combinational XLS module (no template counterpart)
LANE_MODULE = "xls/lane.v.j2"
#: per-lane kinds: the generated modules the lanes' overridden blocks instantiate
LANE_KINDS = ("norm_lane", "dx_lane", "decode")


@dataclass(frozen=True)
class Replaced:
    """A template module whose body is XLS-generated."""

    module: str  # the template module's name (the adapter keeps it), or a generated per-lane
    #              module of the XLS lanes (kinds in LANE_KINDS)
    kind: str  # add, mul, cvt, recip, sqrt, norm_lane, dx_lane, decode, finalize, beat,
    #            scan, quant
    function: str  # DSLX function
    xls_module: str  # the XLS-generated Verilog module
    generator: str  # combinational | pipeline
    latency: int  # clock edges through the XLS pipeline (0: combinational)
    cached: bool
    replaces: str = ""  # what of the template it replaces (the module itself, or lane blocks)


@dataclass
class XlsBuild:
    """The XLS backend's design of one spec and what in it comes from XLS."""

    spec_name: str
    spec_hash: str
    files: dict[str, str]  # the design: file name -> text (with lightnorm.f)
    dslx: str  # the DSLX text the XLS modules come from
    replaced: list[Replaced] = field(default_factory=list)
    template_modules: list[str] = field(default_factory=list)  # still template
    dropped: list[str] = field(default_factory=list)  # template helpers no longer used
    xls_version: str = ""

    def xls_modules(self) -> list[str]:
        return sorted({r.xls_module for r in self.replaced})


@dataclass(frozen=True)
class _LaneModule:
    """A generated per-lane module: ``conns`` = (XLS port, its input port, width) in XLS port
    order, ``out`` = its output port and width."""

    name: str
    kind: str
    function: str
    what: str
    replaces: str
    conns: list[tuple[str, str, int]]
    out: tuple[str, int]


def _fmt(info: FPView) -> FPFormat:
    """The FPFormat behind a template context's format view."""
    return info.fmt  # type: ignore[no-any-return]


def _unit(kind: str, ctx: dict[str, object]) -> Unit:
    if kind in ("add", "recip", "sqrt"):
        f = _fmt(ctx["f"])  # type: ignore[arg-type]
        return Unit(kind, f, f)
    return Unit(kind, _fmt(ctx["fi"]), _fmt(ctx["fo"]))  # type: ignore[arg-type]


def _xls_ctx(p: Pipeline, function: str) -> dict[str, Any]:
    """What an override's header and instance print of the XLS module ``p``."""
    return {"module": p.module, "function": function, "version": xls_version(),
            "latency": p.latency, "clock_ps": p.clock_ps, "delay_model": p.delay_model}


def _unit_override(name: str, unit: rtl.UnitPorts, p: Pipeline, function: str) -> rtl.Override:
    """The unit template ``name`` with its body an instance of ``p``: the unit's data inputs
    in order to XLS's (same order as the DSLX parameters), its output to ``out``."""
    xins, wo = ports(p.verilog, p.module)
    if len(xins) != len(unit.inputs):
        raise ValueError(f"{name}: inputs {unit.inputs} do not match {p.module}'s {xins}")
    conns = [(x.name, n) for x, n in zip(xins, unit.inputs, strict=True)]
    return rtl.Override(UNIT_OVERRIDE, {"xls": {**_xls_ctx(p, function), "unit": unit,
                                                "conns": conns, "width": wo}})


def _lane_module(m: _LaneModule, p: Pipeline) -> str:
    """The per-lane module ``m`` around the combinational XLS module ``p``, whose ports must be
    exactly ``m.conns`` and ``m.out`` (checked)."""
    xins, wo = ports(p.verilog, p.module)
    if [(x.name, x.width) for x in xins] != [(x, w) for x, _, w in m.conns] or wo != m.out[1]:
        raise ValueError(f"{p.module}: ports {xins} -> {wo} do not match {m.conns} -> {m.out}")
    return rtl.render_template(LANE_MODULE, {"name": m.name, "what": m.what, "conns": m.conns,
                                             "out": m.out, "xls": _xls_ctx(p, m.function)})


def _reachable(files: dict[str, str], top: str) -> set[str]:
    """Modules instantiated (transitively) below ``top``, by the text of their files."""
    names = {f[:-2] for f in files if f.endswith(".v")}
    seen = {top}
    todo = [top]
    while todo:
        text = files[f"{todo.pop()}.v"]
        for n in names - seen:
            if re.search(rf"^\s*{re.escape(n)}\s+\w+\s*\(", text, re.MULTILINE):
                seen.add(n)
                todo.append(n)
    return seen


def build(spec: Spec, *, apfloat: bool = True, iterative: str = "xls", lanes: str = "xls",
          decode: str = "xls", finalize: str = "xls", statistics: str = "xls",
          codec: str = "xls", clock_ns: float | None = None,
          delay_model: str = DEFAULT_DELAY_MODEL,
          cache: bool | Path | None = True) -> XlsBuild:
    """The XLS backend's design of ``spec`` and what in it comes from XLS.

    ``iterative``: "xls" (reciprocal and square root as XLS pipelines scheduled at
    ``clock_ns``, default the spec's ``hw.clock_ns``, with ``delay_model``) or "template" (the
    template's iterative state machines). ``lanes``: "xls" (the lanes' per-lane normalize and
    dx arithmetic are the XLS lanes ``norm_lane``/``dx_lane``) or "template" (the template's
    lanes, with XLS operators). ``decode`` (only with ``lanes="xls"``): "xls" (the lanes decode
    x and dy storage with XLS ``bfp_cvt``/``cvt``) or "template" (the template's unpack +
    pack). ``finalize``: "xls" (``ln_finalize`` runs the forward and backward programs as two
    XLS pipelines scheduled at ``clock_ns``) or "template" (the template's sequencer over
    shared units, whose reciprocal and square root ``iterative`` chooses). ``statistics``:
    "xls" (the exact integer beat sums of BFP storage, ``ln_bfp_beat_*``, are XLS
    ``bfp_beat`` functions behind the template module's ports) or "template". ``codec``:
    "xls" (the BFP output encoders' beat exponent scan ``bfp_scan_*`` and element quantizer
    ``bfp_quant_*`` are XLS functions; the two-bank block buffer and its handshake stay
    template) or "template". Compiles through the XLS disk cache."""
    for opt, val, modes in (("iterative", iterative, ITERATIVE_MODES),
                            ("lanes", lanes, LANE_MODES), ("decode", decode, LANE_MODES),
                            ("finalize", finalize, LANE_MODES),
                            ("statistics", statistics, LANE_MODES),
                            ("codec", codec, LANE_MODES)):
        if val not in modes:
            raise ValueError(f"{opt} = {val!r}: expected one of {modes}")
    if decode == "xls" and lanes == "template":
        raise ValueError("decode = 'xls' needs lanes = 'xls' (the decoders sit in the lanes)")
    # the template shell without registers in its units: the XLS parts take their places
    # combinationally (or as XLS pipelines behind a handshake), so the shell's stages stay as
    # they are whatever the clock
    c = rtl.rtl_context(spec, rtl.Combinational())
    mods = c["modules"].mods
    roles_m: dict[str, str] = c["ctx"]["mods"]  # role -> template module
    P, A, S = spec.compute, spec.accum, spec.scalar
    std = spec.bn.mode == "standard"
    roles = spec.storage.roles()
    reg = Functions(spec_exponent_width(spec), apfloat=apfloat)
    todo: list[tuple[str, str, str]] = []  # (template module, kind, function)
    for name, m in sorted(mods.items()):
        kind = REPLACED.get(m.template)
        # the reciprocal and square root serve only the template's finalize sequencer; the
        # adder of a W-way accumulator selects its operands from the partials itself (its
        # first section is the accumulator loop's), so it stays the template's
        if kind is None or (kind in ITERATIVE and (iterative == "template"
                                                   or finalize == "xls")) \
                or m.ctx.get("ways", 0) > 1:
            continue
        todo.append((name, kind, reg.unit(_unit(kind, m.ctx))))
    for option, value in (("statistics", statistics), ("codec", codec)):
        for role in PART_ROLES[option] if value == "xls" else ():
            name = roles_m.get(role, "")
            if not name or name in {t[0] for t in todo}:
                continue
            st = roles[role.split("_")[0]]
            kind = role.rsplit("_", 1)[1]  # sum, sq, scan, quant
            # the family's XLS function for the part ("": its template module stays)
            fn = STORAGE_DSLX[st.kind].part(reg, kind, st, P, A, spec.hw.lanes)
            if fn:
                todo.append((name, "beat" if kind in ("sum", "sq") else kind, fn))
    if statistics == "xls" and "xdy_dot" in roles_m:  # the BFP-native backward's beat dot
        todo.append((roles_m["xdy_dot"], "beat",
                     reg.bfp_dot(*rtl.dot_formats(spec), A, spec.hw.lanes)))
    lane_todo: list[_LaneModule] = []
    pw = P.width
    if lanes == "xls":
        # (the centered normalize form: x is the lane stage's x - mu, shift is beta)
        form = " (centered: x - mu, beta)" if spec.bn.normalize == "centered" else ""
        lane_todo.append(_LaneModule(
            "ln_norm_lane", "norm_lane", reg.norm_lane(P),
            f"normalize lane y = add(mul(x, scale), shift){form} in {P}",
            "ln_fwd_lanes: u_mul, u_add (mul_P, add_P)",
            [("x", "x", pw), ("scale", "scale", pw), ("shift", "shift", pw)], ("y", pw)))
        w_port = "xh" if std else "w"
        lane_todo.append(_LaneModule(
            "ln_dx_lane", "dx_lane", reg.dx_lane(P, std),
            f"dx lane ({'standard' if std else 'range'} BN) in {P}",
            "ln_bwd_lanes: u_g1, " + ("u_t2, " if std else "") + "u_g, u_dx (add_P, mul_P)",
            [("dy", "dy", pw), (w_port, w_port, pw), ("mdb", "mdb", pw)]
            + ([("mdg", "mdg", pw)] if std else []) + [("scale", "scale", pw)], ("dx", pw)))
    # the per-lane modules the lanes' overridden blocks instantiate ("": the template's)
    lane_mods: dict[str, str] = {"norm": "", "dx": "", "x_to_p": "", "dy_to_p": "",
                                 "dy_to_a": ""}
    if lanes == "xls" and decode == "xls":
        for role, dst, tag in (("x", P, "p"), ("dy", P, "p"), ("dy", A, "a")):
            if f"{role}_to_{tag}" not in roles_m and role == "dy":
                continue  # (the BFP-native backward: dy is not converted into A per lane)
            f = roles[role]
            name = f"ln_{role}_to_{tag}"
            fn, widths = STORAGE_DSLX[f.kind].decoder(reg, f, dst)
            # the decoder's DSLX parameters and the lane module's ports they connect to
            names = (("ef", "ef"), ("x", "in")) if f.shared_exp_width else (("a", "in"),)
            conns = [(x, port, w) for (x, port), w in zip(names, widths, strict=True)]
            lane_todo.append(_LaneModule(
                name, "decode", fn, f"{role} storage {f} -> {dst}",
                f"lanes: {roles_m[role + '_unpack']} + {roles_m[role + '_to_' + tag]}", conns,
                ("out", dst.width)))
            lane_mods[f"{role}_to_{tag}"] = name
    for lm in lane_todo:
        if lm.kind != "decode":
            lane_mods["norm" if lm.kind == "norm_lane" else "dx"] = lm.name
    # the finalize programs: (tag, pass, function, inputs, results)
    fin_todo: list[tuple[str, str, str, list[str], list[str]]] = []
    if finalize == "xls":
        prog = rtl.finalize_program(spec)
        for tag, pass_ in (("fwd", "forward"), ("bwd", "backward")):
            fn = reg.finalize(prog[pass_], pass_, S, A, std, rtl.FINALIZE_OUTPUTS)
            fin_todo.append((tag, pass_, fn, *finalize_io(prog[pass_], rtl.FINALIZE_OUTPUTS)))
    text = reg.text(MODULE, f"spec {spec.name} ({spec.hash[:16]}), XLS backend of lightnorm_top")
    dmod = DslxModule(MODULE, text, {}, {}, reg.uses_apfloat)
    clk_ps = int(round(1000 * (clock_ns if clock_ns is not None else spec.hw.clock_ns)))
    opts = CodegenOptions(clock_ps=clk_ps, delay_model=delay_model)
    out = XlsBuild(spec.name, spec.hash, {}, text, xls_version=xls_version())
    compiled: dict[str, Pipeline] = {}

    def get(fn: str, it: bool) -> Pipeline:
        xmod = PREFIX + fn
        if xmod not in compiled:
            compiled[xmod] = (pipeline(dmod, fn, xmod, opts, cache=cache) if it
                              else combinational(dmod, fn, xmod, cache=cache))
        return compiled[xmod]

    overrides: dict[str, rtl.Override] = {}
    generated: dict[str, str] = {}  # the per-lane modules
    for name, kind, fn in todo:
        it = kind in ITERATIVE
        p = get(fn, it)
        overrides[name] = _unit_override(name, rtl.UNIT_PORTS[mods[name].template], p, fn)
        out.replaced.append(Replaced(name, kind, fn, p.module,
                                     "pipeline" if it else "combinational", p.latency, p.cached,
                                     name))
    for lm in lane_todo:
        p = get(lm.function, False)
        generated[f"{lm.name}.v"] = _lane_module(lm, p)
        out.replaced.append(Replaced(lm.name, lm.kind, lm.function, p.module, "combinational",
                                     0, p.cached, lm.replaces))
    if lanes == "xls":
        for module, tpl in LANE_OVERRIDES.items():
            overrides[module] = rtl.Override(tpl, {"xls": lane_mods})
    if fin_todo:
        passes = []
        for tag, pass_, fn, params, outs in fin_todo:
            p = get(fn, True)
            xins, wo = ports(p.verilog, p.module)
            if [x.name for x in xins] != params or wo != S.width * len(outs):
                raise ValueError(f"{p.module}: ports {xins} -> {wo} do not match {params}")
            passes.append({"tag": tag, "pass_": pass_, "function": fn, "module": p.module,
                           "latency": p.latency, "params": params, "outs": outs,
                           "out_width": wo})
            out.replaced.append(Replaced(
                "ln_finalize", "finalize", fn, p.module, "pipeline", p.latency, p.cached,
                f"ln_finalize: the {pass_} program of the sequencer and its shared units"))
        overrides["ln_finalize"] = rtl.Override(FINALIZE_OVERRIDE, {"xls": {
            "passes": passes, "version": xls_version(), "clock_ps": clk_ps,
            "delay_model": delay_model}})
    files = {**rtl.render_design(c, overrides), **generated,
             **{f"{m}.v": p.verilog for m, p in compiled.items()}}
    keep = _reachable(files, rtl.TOP)
    out.dropped = sorted(f[:-2] for f in files if f[:-2] not in keep)
    files = {f: t for f, t in files.items() if f[:-2] in keep}
    # an operator only the template lanes used is not part of the design any more
    out.replaced = [r for r in out.replaced if r.module in keep]
    xls_mods = {r.xls_module for r in out.replaced}
    adapters = {r.module for r in out.replaced}
    out.template_modules = sorted(f[:-2] for f in files
                                  if f[:-2] not in xls_mods and f[:-2] not in adapters)
    out.files = rtl.with_file_list(files)
    return out


def render_xls_rtl(spec: Spec, *, apfloat: bool = True, iterative: str = "xls",
                   lanes: str = "xls", decode: str = "xls", finalize: str = "xls",
                   statistics: str = "xls", codec: str = "xls",
                   clock_ns: float | None = None,
                   delay_model: str = DEFAULT_DELAY_MODEL,
                   cache: bool | Path | None = True) -> dict[str, str]:
    """The design files of the XLS backend (file name -> text, plus ``lightnorm.f``); the top
    is ``lightnorm_top`` with the template's port list (docs/rtl.md section 4)."""
    return build(spec, apfloat=apfloat, iterative=iterative, lanes=lanes, decode=decode,
                 finalize=finalize, statistics=statistics, codec=codec, clock_ns=clock_ns,
                 delay_model=delay_model, cache=cache).files


#: ``verilator -Wall`` waivers of the XLS design (see docs/xls.md): XLS's partly used node
#: wires (combinational modules name them ``<node>``, pipelines ``p<stage>_<node>_comb``).
LINT_WAIVERS = """`verilator_config
// XLS codegen: partly used intermediate node wires (lightnorm.backends.xls, docs/xls.md)
lint_off -rule UNUSEDSIGNAL -file "*xls_*.v" -match "Bits of signal are not used: *"
"""


class XlsBackend(Backend):
    """The template's streaming shell around XLS-generated logic (:func:`build`; its options
    are ``render``'s)."""

    name = "xls"
    label = "XLS"
    description = ("the template shell around XLS-generated arithmetic, statistics, codecs, "
                   "lanes and finalize (docs/xls.md)")
    lint_waivers = LINT_WAIVERS

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None, **options: Any) -> dict[str, str]:
        del liberty  # XLS schedules with its own delay model (DEFAULT_DELAY_MODEL)
        return render_xls_rtl(spec, clock_ns=clock_ns, **options)

    def tool_versions(self) -> dict[str, str]:
        return {XLS_PACKAGE: xls_version()}

    def generated_modules(self, files: Mapping[str, str]) -> set[str]:
        return {f[:-2] for f in files if f.startswith(PREFIX) and f.endswith(".v")}


__all__ = ["ITERATIVE_MODES", "LANE_KINDS", "LANE_MODES", "LINT_WAIVERS", "MODULE",
           "PART_ROLES", "REPLACED", "Replaced", "XlsBackend", "XlsBuild", "build",
           "render_xls_rtl"]
