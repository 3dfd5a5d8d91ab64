"""The XLS backend of ``lightnorm_top``: a template-made streaming shell around XLS-generated
datapath modules (docs/xls.md).

``render_xls_rtl(spec)`` starts from the template design (:func:`lightnorm.codegen.rtl.render_rtl`:
the stable ``lightnorm_top`` wrapper, the controller, the stream handshakes, the lane pipelines,
accumulators, block buffers) and replaces by XLS-generated Verilog:

* ``fp_add_*``, ``fp_mul_*`` (also the mixed-format ``fp_mul_<in>_to_<out>``) and ``fp_cvt_*``,
  the BFP beat sums of the statistics ``ln_bfp_beat_*`` (option ``statistics``) and the BFP
  encoders' exponent scan ``bfp_scan_*`` and quantizer ``bfp_quant_*`` (option ``codec``): XLS's
  **combinational** generator (module ``xls_<function>``: no clock, no registers) behind a
  generated adapter that keeps the template module's name and port list. The shell's pipeline
  registers sit exactly where they were, so its timing (and its cycle count) is unchanged;
* ``ln_finalize`` (option ``finalize``): its forward and backward programs as two XLS
  **pipelines** at the spec's clock (``sky130`` delay model) behind the template's ports and
  start/done handshake (``templates/rtl/xls/ln_finalize.v.j2``). With
  ``finalize="template"`` the sequencer stays and its ``fp_recip_*``/``fp_sqrt_*`` become XLS
  pipelines behind the iterative units' handshake (``iterative="template"`` keeps those too);
* the lane pipelines ``ln_fwd_lanes``/``ln_bwd_lanes`` are the backend's own copies
  (``templates/rtl/xls/``): the template's register stages, handshakes and port lists,
  whose per-lane arithmetic is the XLS normalize lane (``norm_lane``: ``y = add(mul(x, scale),
  shift)``) and dx lane (``dx_lane``), and whose x/dy storage decoders are XLS ``bfp_cvt``
  (BFP storage) or ``cvt`` (FP storage), each a combinational XLS module behind a generated
  per-lane module (``ln_norm_lane``, ``ln_dx_lane``, ``ln_x_to_p``, ``ln_dy_to_p``,
  ``ln_dy_to_a``). ``lanes="template"`` / ``decode="template"`` keep the template's.

Template helper modules that only the replaced modules used (``fp_round_*``, ``ln_lzc_w*``,
...) drop out of the design; the rest of the shell (the BFP encoders' block buffers, the tree
accumulators, the range-BN extrema unit with its decoders, the top, and in the lanes x - mu and
x_hat with XLS operators) stays template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from lightnorm.codegen import rtl
from lightnorm.codegen.dslx import DslxModule, Functions, Unit, finalize_io, spec_exponent_width
from lightnorm.spec import BFPFormat, FPFormat, Spec
from lightnorm.spec.formats import FPView
from lightnorm.tools.xls import (
    DEFAULT_DELAY_MODEL,
    CodegenOptions,
    Pipeline,
    combinational,
    pipeline,
    xls_version,
)
from lightnorm.verify.xls_sim import ports

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
#: the XLS backend's own copies of the lane pipelines (templates/rtl/xls/): the template's
#: register stages and handshake around the XLS lanes and storage decoders
LANE_FILES = {"xls/ln_fwd_lanes.v.j2": "ln_fwd_lanes.v", "xls/ln_bwd_lanes.v.j2": "ln_bwd_lanes.v"}
#: the finalize unit around the two XLS finalize pipelines (template ports and handshake)
FINALIZE_FILE = "xls/ln_finalize.v.j2"
#: per-lane kinds: generated modules (no template counterpart) instantiated in those copies
LANE_KINDS = ("norm_lane", "dx_lane", "decode")


@dataclass(frozen=True)
class Replaced:
    """A template module whose body is XLS-generated."""

    module: str  # the template module's name (the adapter keeps it), or a generated per-lane
    #              module of the XLS lane copies (kinds in LANE_KINDS)
    kind: str  # add, mul, cvt, recip, sqrt, norm_lane, dx_lane, decode, finalize, beat,
    #            scan, quant
    function: str  # DSLX function
    xls_module: str  # the XLS-generated Verilog module
    generator: str  # combinational | pipeline
    latency: int  # clock edges through the XLS pipeline (0: combinational)
    cached: bool
    replaces: str = ""  # what of the template it replaces (the module itself, or lane blocks)


@dataclass
class XlsBackend:
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


def _fmt(info: FPView) -> FPFormat:
    """The FPFormat behind a template context's format view."""
    return info.fmt  # type: ignore[no-any-return]


def _unit(kind: str, ctx: dict[str, object]) -> Unit:
    if kind in ("add", "recip", "sqrt"):
        f = _fmt(ctx["f"])  # type: ignore[arg-type]
        return Unit(kind, f, f)
    return Unit(kind, _fmt(ctx["fi"]), _fmt(ctx["fo"]))  # type: ignore[arg-type]


def _port_list(verilog: str, module: str) -> str:
    m = re.search(rf"module {re.escape(module)} \((.*?)\);", verilog, re.DOTALL)
    if m is None:
        raise ValueError(f"no module {module} in its template text")
    return m.group(1).strip("\n")


def _template_ports(verilog: str, module: str) -> list[tuple[str, str]]:
    """(direction, name) of a template module's ports, in order."""
    return re.findall(r"(input|output)\s+(?:wire|reg)\s+(?:signed\s+)?(?:\[[^\]]+\]\s*)?(\w+)",
                      _port_list(verilog, module))


def _header(r: Replaced, what: str) -> str:
    return (f"// {r.module}: XLS backend adapter (lightnorm.backends.xls). The template module's\n"
            f"// name and ports around {r.xls_module}, generated by XLS (xls-python "
            f"{xls_version()})\n// from the DSLX function {r.function} ({what}).\n")


def _adapter_comb(r: Replaced, template_text: str, p: Pipeline) -> str:
    tports = _template_ports(template_text, r.module)
    ins = [n for d, n in tports if d == "input"]
    outs = [n for d, n in tports if d == "output"]
    xins, _ = ports(p.verilog, p.module)
    if len(outs) != 1 or len(ins) != len(xins):
        raise ValueError(f"{r.module}: ports {tports} do not match {p.module}")
    conns = ", ".join([f".{x.name}({t})" for x, t in zip(xins, ins, strict=True)]
                      + [f".out({outs[0]})"])
    return (_header(r, "combinational: no registers, the shell's timing is unchanged")
            + f"module {r.module} (\n{_port_list(template_text, r.module)}\n);\n"
            + f"    {p.module} u_xls ({conns});\nendmodule\n")


def _adapter_iterative(r: Replaced, template_text: str, p: Pipeline, width: int) -> str:
    names = [n for _, n in _template_ports(template_text, r.module)]
    if names != ["clk", "rst", "start", "a", "valid", "y"]:
        raise ValueError(f"{r.module}: unexpected ports {names}")
    xins, _ = ports(p.verilog, p.module)
    if len(xins) != 1:
        raise ValueError(f"{p.module}: expected one data input, got {xins}")
    w = width - 1
    return (_header(r, f"pipelined at {p.clock_ps} ps ({p.delay_model}), latency {p.latency}")
            + "// start is the pipeline's in_valid; valid rises when the result leaves the\n"
            + "// pipeline and stays high, with y held, until the next start (the template's\n"
            + "// handshake).\n"
            + f"module {r.module} (\n{_port_list(template_text, r.module)}\n);\n"
            + "    wire xls_valid;\n"
            + f"    wire [{w}:0] xls_out;\n"
            + f"    reg  [{w}:0] y_r;\n"
            + f"    {p.module} u_xls (.clk(clk), .rst(rst), .in_valid(start), "
            + f".{xins[0].name}(a), .out_valid(xls_valid), .out(xls_out));\n"
            + "    always @(posedge clk) begin\n"
            + "        if (rst) valid <= 1'b0;\n"
            + "        else if (start) valid <= 1'b0;\n"
            + "        else if (xls_valid) valid <= 1'b1;\n"
            + "        if (xls_valid) y_r <= xls_out;\n"
            + "    end\n"
            + "    assign y = y_r;\nendmodule\n")


def _adapter_lane(name: str, what: str, p: Pipeline, function: str,
                  conns: list[tuple[str, str, int]], out: tuple[str, int]) -> str:
    """A generated per-lane module ``name`` around the combinational XLS module ``p``:
    ``conns`` = (XLS port, this module's input port, width) in XLS port order, ``out`` = this
    module's output port and width. The XLS ports must be exactly those (checked)."""
    xins, wo = ports(p.verilog, p.module)
    if [(x.name, x.width) for x in xins] != [(x, w) for x, _, w in conns] or wo != out[1]:
        raise ValueError(f"{p.module}: ports {xins} -> {wo} do not match {conns} -> {out}")
    decl = [f"    input  wire [{w - 1}:0] {n}," for _, n, w in conns]
    decl.append(f"    output wire [{out[1] - 1}:0] {out[0]}")
    inst = ", ".join([f".{x}({n})" for x, n, _ in conns] + [f".out({out[0]})"])
    return (f"// {name}: XLS backend per-lane module (lightnorm.backends.xls): {what}.\n"
            f"// Combinational, around {p.module}, generated by XLS (xls-python "
            f"{xls_version()})\n// from the DSLX function {function}; instantiated by the "
            f"backend's ln_fwd_lanes/ln_bwd_lanes.\n"
            + f"module {name} (\n" + "\n".join(decl) + "\n);\n"
            + f"    {p.module} u_xls ({inst});\nendmodule\n")


def _lane_environment() -> jinja2.Environment:
    """The RTL templates' environment: the backend's templates are under ``rtl/xls/``."""
    return rtl.environment()


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
          cache: bool | Path | None = True) -> XlsBackend:
    """The XLS backend's design of ``spec`` and what in it comes from XLS.

    ``iterative``: "xls" (reciprocal and square root as XLS pipelines scheduled at
    ``clock_ns``, default the spec's ``hw.clock_ns``, with ``delay_model``) or "template" (the
    template's iterative state machines). ``lanes``: "xls" (the lane pipelines are the
    backend's copies, whose per-lane normalize and dx arithmetic are the XLS lanes
    ``norm_lane``/``dx_lane``) or "template" (the template's lanes, with XLS operators).
    ``decode`` (only with ``lanes="xls"``): "xls" (the lanes decode x and dy storage with XLS
    ``bfp_cvt``/``cvt``) or "template" (the template's unpack + pack). ``finalize``: "xls"
    (``ln_finalize`` runs the forward and backward programs as two XLS pipelines scheduled at
    ``clock_ns``) or "template" (the template's sequencer over shared units, whose reciprocal
    and square root ``iterative`` chooses). ``statistics``: "xls" (the exact integer beat sums
    of BFP storage, ``ln_bfp_beat_*``, are XLS ``bfp_beat`` functions behind the template
    module's ports) or "template". ``codec``: "xls" (the BFP output encoders' beat exponent
    scan ``bfp_scan_*`` and element quantizer ``bfp_quant_*`` are XLS functions; the
    two-bank block buffer and its handshake stay template) or "template". Compiles through
    the XLS disk cache."""
    for opt, val, modes in (("iterative", iterative, ITERATIVE_MODES),
                            ("lanes", lanes, LANE_MODES), ("decode", decode, LANE_MODES),
                            ("finalize", finalize, LANE_MODES),
                            ("statistics", statistics, LANE_MODES),
                            ("codec", codec, LANE_MODES)):
        if val not in modes:
            raise ValueError(f"{opt} = {val!r}: expected one of {modes}")
    if decode == "xls" and lanes == "template":
        raise ValueError("decode = 'xls' needs lanes = 'xls' (the decoders sit in the lanes)")
    c = rtl.rtl_context(spec)
    files = {k: v for k, v in rtl.render_rtl(spec).items() if k.endswith(".v")}
    mods = c["modules"].mods
    roles_m: dict[str, str] = c["ctx"]["mods"]  # role -> template module
    P, A, S = spec.compute, spec.accum, spec.scalar
    std = spec.bn.mode == "standard"
    roles = spec.storage.roles()
    reg = Functions(spec_exponent_width(spec), apfloat=apfloat)
    todo: list[tuple[str, str, str]] = []  # (template module, kind, function)
    for name, m in sorted(mods.items()):
        kind = REPLACED.get(m.template)
        # the reciprocal and square root serve only the template's finalize sequencer
        if kind is None or (kind in ITERATIVE and (iterative == "template"
                                                   or finalize == "xls")):
            continue
        todo.append((name, kind, reg.unit(_unit(kind, m.ctx))))
    for option, value in (("statistics", statistics), ("codec", codec)):
        for role in PART_ROLES[option] if value == "xls" else ():
            name = roles_m.get(role, "")
            st = roles[role.split("_")[0]]
            if not name or not isinstance(st, BFPFormat) or name in {t[0] for t in todo}:
                continue
            kind = role.rsplit("_", 1)[1]  # sum, sq, scan, quant
            fn = (reg.bfp_scan(st, P, spec.hw.lanes) if kind == "scan"
                  else reg.bfp_quant(st, P) if kind == "quant"
                  else reg.bfp_beat(st, A, spec.hw.lanes, kind == "sq"))
            todo.append((name, "beat" if kind in ("sum", "sq") else kind, fn))
    # per-lane modules of the backend's lane copies: (module, kind, function, what, replaces,
    # [(XLS port, port, width)], (output, width))
    lane_todo: list[tuple[str, str, str, str, str, list[tuple[str, str, int]],
                          tuple[str, int]]] = []
    pw = P.width
    if lanes == "xls":
        lane_todo.append((
            "ln_norm_lane", "norm_lane", reg.norm_lane(P),
            f"normalize lane y = add(mul(x, scale), shift) in {P}",
            "ln_fwd_lanes: u_mul, u_add (mul_P, add_P)",
            [("x", "x", pw), ("scale", "scale", pw), ("shift", "shift", pw)], ("y", pw)))
        w_port = "xh" if std else "w"
        lane_todo.append((
            "ln_dx_lane", "dx_lane", reg.dx_lane(P, std),
            f"dx lane ({'standard' if std else 'range'} BN) in {P}",
            "ln_bwd_lanes: u_g1, " + ("u_t2, " if std else "") + "u_g, u_dx (add_P, mul_P)",
            [("dy", "dy", pw), (w_port, w_port, pw), ("mdb", "mdb", pw)]
            + ([("mdg", "mdg", pw)] if std else []) + [("scale", "scale", pw)], ("dx", pw)))
    xl: dict[str, str] = {"norm": "", "dx": "", "x_to_p": "", "dy_to_p": "", "dy_to_a": ""}
    if lanes == "xls" and decode == "xls":
        for role, dst, tag in (("x", P, "p"), ("dy", P, "p"), ("dy", A, "a")):
            f = roles[role]
            name = f"ln_{role}_to_{tag}"
            if isinstance(f, BFPFormat):
                fn = reg.bfp_cvt(f, dst)
                conns = [("ef", "ef", f.exp_bits), ("x", "in", f.man_bits + 1)]
            else:
                fn = reg.cvt(f, dst)
                conns = [("a", "in", f.width)]
            lane_todo.append((
                name, "decode", fn, f"{role} storage {f} -> {dst}",
                f"lanes: {roles_m[role + '_unpack']} + {roles_m[role + '_to_' + tag]}", conns,
                ("out", dst.width)))
            xl[f"{role}_to_{tag}"] = name
    for name, kind, *_ in lane_todo:
        if kind != "decode":
            xl["norm" if kind == "norm_lane" else "dx"] = name
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
    out = XlsBackend(spec.name, spec.hash, {}, text, xls_version=xls_version())
    compiled: dict[str, Pipeline] = {}

    def get(fn: str, it: bool) -> Pipeline:
        xmod = PREFIX + fn
        if xmod not in compiled:
            compiled[xmod] = (pipeline(dmod, fn, xmod, opts, cache=cache) if it
                              else combinational(dmod, fn, xmod, cache=cache))
        files[f"{xmod}.v"] = compiled[xmod].verilog
        return compiled[xmod]

    for name, kind, fn in todo:
        it = kind in ITERATIVE
        p = get(fn, it)
        r = Replaced(name, kind, fn, p.module, "pipeline" if it else "combinational", p.latency,
                     p.cached, name)
        tpl = files[f"{name}.v"]
        files[f"{name}.v"] = (_adapter_iterative(r, tpl, p, mods[name].ctx["f"].w) if it
                              else _adapter_comb(r, tpl, p))
        out.replaced.append(r)
    for name, kind, fn, what, replaces, conns, o in lane_todo:
        p = get(fn, False)
        files[f"{name}.v"] = _adapter_lane(name, what, p, fn, conns, o)
        out.replaced.append(Replaced(name, kind, fn, p.module, "combinational", 0, p.cached,
                                     replaces))
    env = _lane_environment()
    if lanes == "xls":
        ctx: dict[str, Any] = {**c["ctx"], "xl": xl}
        for tpl_name, fname in LANE_FILES.items():
            files[fname] = env.get_template(tpl_name).render(**ctx)
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
        files["ln_finalize.v"] = env.get_template(FINALIZE_FILE).render(
            **c["ctx"], passes=passes, xls_version=xls_version(), clock_ps=clk_ps,
            delay_model=delay_model,
            port_list=_port_list(files["ln_finalize.v"], "ln_finalize"))
    keep = _reachable(files, rtl.TOP)
    out.dropped = sorted(f[:-2] for f in files if f[:-2] not in keep)
    files = {f: t for f, t in files.items() if f[:-2] in keep}
    # an operator only the template lanes used is not part of the design any more
    out.replaced = [r for r in out.replaced if r.module in keep]
    xls_mods = {r.xls_module for r in out.replaced}
    adapters = {r.module for r in out.replaced}
    out.template_modules = sorted(f[:-2] for f in files
                                  if f[:-2] not in xls_mods and f[:-2] not in adapters)
    files["lightnorm.f"] = "".join(f"{f}\n" for f in sorted(files))
    out.files = dict(sorted(files.items()))
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


__all__ = ["ITERATIVE_MODES", "LANE_FILES", "LANE_KINDS", "LANE_MODES", "LINT_WAIVERS", "MODULE",
           "PART_ROLES", "REPLACED", "Replaced", "XlsBackend", "build", "render_xls_rtl"]
