"""The ``lightnorm`` command.

Conventions (shared/DESIGN.md section 8): every command takes a spec as a preset name or a TOML
path; ``--json`` prints machine-readable JSON on stdout, human text (rich tables) otherwise.
Exit status: 0 ok, 1 verification mismatch, 2 bad input - with exactly one line
``lightnorm: error: <message>`` on stderr, never a traceback.

Adding a subcommand: write ``cmd_<name>(args: argparse.Namespace) -> int`` (and, if it has
options of its own, a ``_<name>_args(parser)`` that adds them), then add one entry to
:data:`COMMANDS`. The ``SPEC`` argument and ``--json`` are added for you. Raise
:class:`~lightnorm.spec.SpecError`, :class:`~lightnorm.errors.UsageError` or
:class:`~lightnorm.errors.ToolError` for anything the user can fix; :func:`main` reports it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from lightnorm import __version__
from lightnorm.cli import args as cliargs
from lightnorm.cli.accuracy import ACCURACY_HELP, add_accuracy_arguments, cmd_accuracy
from lightnorm.cli.bench import BENCH_HELP, add_bench_arguments, cmd_bench
from lightnorm.cli.estimate import ESTIMATE_HELP, add_estimate_arguments, cmd_estimate
from lightnorm.cli.flow import (
    FLOW_HELP,
    REGRESS_HELP,
    REPORT_HELP,
    SWEEP_HELP,
    add_flow_arguments,
    add_regress_arguments,
    add_report_arguments,
    add_sweep_arguments,
    cmd_flow,
    cmd_regress,
    cmd_report,
    cmd_sweep,
)
from lightnorm.cli.hls import HLS_HELP, add_hls_arguments, cmd_hls
from lightnorm.cli.parse import PARSE_HELP, add_parse_arguments, cmd_parse
from lightnorm.cli.quality import QUALITY_HELP, add_quality_arguments, cmd_quality
from lightnorm.cli.quantize import QUANTIZE_HELP, add_quantize_arguments, cmd_quantize
from lightnorm.cli.synth import SYNTH_HELP, add_synth_arguments, cmd_synth
from lightnorm.cli.units import UNITS_HELP, add_units_arguments, cmd_units
from lightnorm.errors import LightnormError, UsageError
from lightnorm.jsonsafe import json_safe
from lightnorm.spec import Spec, SpecError, check_channel_elems, load, preset_names
from lightnorm.spec.io import PRESET_PACKAGE

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2

SPEC_HELP = "a preset name (see 'lightnorm presets') or the path of a TOML spec file"
ARITH_ROLES = ("compute", "accum", "scalar")
ROLE_TENSORS = {
    "x": "input activations",
    "y": "output activations",
    "dy": "incoming gradient",
    "dx": "outgoing gradient",
}


# --- plumbing ---------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through :func:`main` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


@dataclass(frozen=True)
class Command:
    """One subcommand: its function, its one-line help and how it extends the parser."""

    run: Callable[[argparse.Namespace], int]
    help: str
    takes_spec: bool = True
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    #: False for a command whose subcommands declare ``--json`` themselves (bench)
    takes_json: bool = True


def _console() -> Console:
    # Created per call so that output follows sys.stdout as it is now (pytest's capsys).
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the ``--json`` output of every command)."""
    sys.stdout.write(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip()) or "failed"


def _fmt_num(v: float) -> str:
    return f"{v:g}" if math.isfinite(v) else str(v)


# --- presets ----------------------------------------------------------------------------------
def preset_path(name: str) -> str:
    return str(resources.files(PRESET_PACKAGE).joinpath(f"{name}.toml"))


def cmd_presets(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in preset_names():
        spec = load(name)
        rows.append({
            "name": name,
            "description": spec.description,
            "path": preset_path(name),
            "mode": spec.bn.mode,
            "x_format": str(spec.storage.x),
            "x_bits_per_element": spec.storage.x.bits_per_element,
            "hash": spec.hash,
        })
    if args.json:
        emit_json(rows)
        return EXIT_OK
    table = Table(title="lightnorm presets")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("mode", no_wrap=True)
    table.add_column("bits/elem x", justify="right", no_wrap=True)
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["mode"], _fmt_num(r["x_bits_per_element"]), r["description"])
    _console().print(table)
    return EXIT_OK


# --- show -------------------------------------------------------------------------------------
def derived_facts(spec: Spec) -> dict[str, Any]:
    """Facts computed from a spec (nothing here is stored in it)."""
    bits = spec.bits_per_element()
    arith = {role: getattr(spec, role) for role in ARITH_ROLES}
    return {
        "ident": spec.ident,
        "storage": {
            role: {"kind": fmt.kind, "format": str(fmt), "bits_per_element": bits[role]}
            for role, fmt in spec.storage.roles().items()
        },
        "arithmetic": {
            role: {
                "format": str(fmt),
                "width": fmt.width,
                "rounding": fmt.rounding,
                "max_value": fmt.max_value,
                "min_normal": fmt.min_normal,
            }
            for role, fmt in arith.items()
        },
        "offchip_bytes_per_element": spec.offchip_bytes_per_element(),
        "channel_elems": {"min": spec.min_channel_elems(), "max": spec.hw.max_channel_elems},
    }


def cmd_show(args: argparse.Namespace) -> int:
    spec = load(args.spec)
    facts = derived_facts(spec)
    if args.json:
        emit_json({"spec": spec.to_dict(), "hash": spec.hash, "derived": facts})
        return EXIT_OK

    console = _console()
    console.print(f"[bold]{spec.name}[/bold]  {spec.description}", markup=True)
    console.print(f"hash {spec.hash}")

    design = Table(title="design", show_header=False)
    design.add_column("field", style="bold")
    design.add_column("value")
    bn, hw = spec.bn, spec.hw
    design.add_row("bn.mode", bn.mode)
    design.add_row("bn.chunks", str(bn.chunks))
    design.add_row("bn.eps", _fmt_num(bn.eps))
    design.add_row("bn.momentum", _fmt_num(bn.momentum))
    design.add_row("bn.normalize", bn.normalize)
    design.add_row("hw.lanes", str(hw.lanes))
    design.add_row("hw.clock_ns", _fmt_num(hw.clock_ns))
    design.add_row("hw.part", hw.part)
    ce = facts["channel_elems"]
    design.add_row("elements per channel", f"{ce['min']:,} .. {ce['max']:,}")
    console.print(design)

    storage = Table(title="off-chip storage")
    storage.add_column("role", style="bold")
    storage.add_column("tensor")
    storage.add_column("format")
    storage.add_column("bits/elem", justify="right")
    for role, info in facts["storage"].items():
        storage.add_row(role, ROLE_TENSORS.get(role, ""), info["format"],
                        _fmt_num(info["bits_per_element"]))
    console.print(storage)

    arith = Table(title="arithmetic")
    arith.add_column("role", style="bold")
    arith.add_column("format")
    arith.add_column("bits", justify="right")
    arith.add_column("largest", justify="right")
    arith.add_column("smallest normal", justify="right")
    for role, info in facts["arithmetic"].items():
        arith.add_row(role, info["format"], str(info["width"]), f"{info['max_value']:.6g}",
                      f"{info['min_normal']:.6g}")
    console.print(arith)

    traffic = Table(title="off-chip bytes per element (one BN layer)")
    traffic.add_column("forward", justify="right")
    traffic.add_column("backward", justify="right")
    traffic.add_column("total", justify="right")
    ob = facts["offchip_bytes_per_element"]
    traffic.add_row(f"{ob['forward']:.4g}", f"{ob['backward']:.4g}", f"{ob['total']:.4g}")
    console.print(traffic)
    return EXIT_OK


# --- validate ---------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    spec = load(args.spec)  # raises SpecError -> one line, exit 2
    if args.json:
        emit_json({"ok": True, "name": spec.name, "hash": spec.hash, "source": args.spec})
    else:
        sys.stdout.write(f"ok: {spec.name} ({spec.hash})\n")
    return EXIT_OK


# --- golden -----------------------------------------------------------------------------------
DEFAULT_SHAPE = "8,16,14,14"
GOLDEN_MAX_ELEMS = 1 << 24


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """``"N,C,H,W"`` -> four positive integers, at most what the golden model takes in one call."""
    return cliargs.parse_shape(text, GOLDEN_MAX_ELEMS, DEFAULT_SHAPE)


def _golden_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape", default=DEFAULT_SHAPE, metavar="N,C,H,W",
                        help=f"NCHW shape of the random batch (default {DEFAULT_SHAPE})")
    parser.add_argument("--seed", type=cliargs.SEED, default=0, help="random seed (default 0)")
    parser.epilog = ("data: x ~ normal(mean 0.5, std 2), dy ~ normal(0, std 0.01), gamma ~ "
                     "uniform(0.5, 1.5), beta ~ uniform(-0.5, 0.5); the reference is the float64 "
                     "ideal model on the stored x. In JSON, an error-free SQNR (inf) is null.")


def error_stats(got: Any, ref: Any) -> dict[str, float]:
    """Error of ``got`` against the reference ``ref``: relative RMS, SQNR in dB, max |error|.

    ``sqnr_db = 10 log10(sum ref^2 / sum err^2) = -20 log10(rel_rms)``; inf when there is no
    error (null in JSON).
    """
    import numpy as np

    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if g.shape != r.shape:
        raise ValueError(f"shape mismatch: {g.shape} vs reference {r.shape}")
    err = g - r
    signal = float(np.sum(r * r))
    noise = float(np.sum(err * err))
    if noise == 0.0:
        rel, sqnr = 0.0, math.inf
    elif signal == 0.0:
        rel, sqnr = math.inf, -math.inf
    else:
        rel, sqnr = math.sqrt(noise / signal), 10.0 * math.log10(signal / noise)
    max_abs = float(np.max(np.abs(err))) if err.size else 0.0
    return {"rel_rms": rel, "sqnr_db": sqnr, "max_abs_err": max_abs}


def cmd_golden(args: argparse.Namespace) -> int:
    spec = load(args.spec)
    n, c, h, w = parse_shape(args.shape)
    check_channel_elems(spec, n * h * w)

    import numpy as np

    from lightnorm.verify import golden, ideal

    rng = np.random.default_rng(args.seed)
    shape = (n, c, h, w)
    x = rng.normal(0.5, 2.0, size=shape)
    dy = rng.normal(0.0, 1e-2, size=shape)
    gamma = rng.uniform(0.5, 1.5, size=c)
    beta = rng.uniform(-0.5, 0.5, size=c)

    t0 = time.perf_counter()
    fr = golden.forward(spec, x, gamma, beta)
    t1 = time.perf_counter()
    br = golden.backward(spec, x, dy, gamma, beta)
    t2 = time.perf_counter()

    # The reference: the float64 ideal model on the inputs as the golden model stored them, so
    # the figures measure the arithmetic and the output encoding, not the input quantization.
    xq = np.asarray(fr.x_values, dtype=np.float64)
    dy_stored = getattr(br, "dy_values", None)
    dyq = dy if dy_stored is None else np.asarray(dy_stored, dtype=np.float64)
    kw: dict[str, Any] = {"mode": spec.bn.mode, "eps": spec.bn.eps, "chunks": spec.bn.chunks,
                          "lanes": spec.hw.lanes}
    y_ref = ideal.forward(xq, gamma, beta, **kw).y
    dx_ref = ideal.backward(xq, dyq, gamma, beta, range_grad="exact", **kw).dx
    # Range BN: how much the exact gradient through sigma_hat (argmax/argmin) matters, i.e.
    # what hardware that holds sigma_hat constant would give up (docs/numerics.md section 9).
    range_grad_diff = None
    if spec.bn.mode == "range":
        dx_const = ideal.backward(xq, dyq, gamma, beta, range_grad="constant", **kw).dx
        range_grad_diff = error_stats(dx_const, dx_ref)

    elems = n * c * h * w
    t_fwd, t_bwd = t1 - t0, t2 - t1
    result = {
        "spec": spec.name,
        "hash": spec.hash,
        "shape": list(shape),
        "seed": args.seed,
        "elements": elems,
        "elements_per_channel": n * h * w,
        "time_s": {"forward": t_fwd, "backward": t_bwd},
        "elements_per_s": {
            "forward": elems / t_fwd if t_fwd > 0 else math.inf,
            "backward": elems / t_bwd if t_bwd > 0 else math.inf,
        },
        "reference": {
            "model": "float64 ideal",
            "x": "stored (quantized) x",
            "dy": "raw dy" if dy_stored is None else "stored (quantized) dy",
            "range_grad": "exact",
        },
        "error": {"y": error_stats(fr.y, y_ref), "dx": error_stats(br.dx, dx_ref)},
        # ideal dx with range_grad="constant" against the exact one; null for standard BN
        "range_grad_constant_vs_exact": range_grad_diff,
    }
    if args.json:
        emit_json(result)
        return EXIT_OK

    console = _console()
    console.print(
        f"[bold]golden {spec.name}[/bold]: shape {n}x{c}x{h}x{w} ({elems:,} elements, "
        f"{n * h * w:,} per channel), seed {args.seed}", markup=True,
    )
    inputs = "stored x, raw dy" if dy_stored is None else "stored x and dy"
    table = Table(title=f"golden model vs float64 ideal model on the same inputs ({inputs})")
    table.add_column("pass", style="bold")
    table.add_column("time s", justify="right")
    table.add_column("Melem/s", justify="right")
    table.add_column("output")
    table.add_column("rel RMS", justify="right")
    table.add_column("SQNR dB", justify="right")
    table.add_column("max |err|", justify="right")
    for name, out, t in (("forward", "y", t_fwd), ("backward", "dx", t_bwd)):
        e = result["error"][out]
        rate = elems / t / 1e6 if t > 0 else math.inf
        table.add_row(name, f"{t:.3f}", f"{rate:.3g}", out, f"{e['rel_rms']:.3e}",
                      f"{e['sqnr_db']:.1f}", f"{e['max_abs_err']:.3e}")
    console.print(table)
    if range_grad_diff is not None:
        console.print(
            f"range BN: holding sigma_hat constant in the gradient (range_grad=constant) would "
            f"move the ideal dx by rel RMS {range_grad_diff['rel_rms']:.3e} "
            f"(SQNR {range_grad_diff['sqnr_db']:.1f} dB); the hardware computes the exact one"
        )
    console.print("times include any one-off JIT compilation of the first call")
    return EXIT_OK


# --- generate / csim -----------------------------------------------------------------------------
PASSES = ("forward", "backward", "both")
VERIFY_SHAPE = "2,4,8,16"


def _generate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", required=True, metavar="OUT",
                        type=cliargs.out_dir_arg("--out"),
                        help="output directory (OUT/hls, OUT/rtl, OUT/manifest.json): new, "
                             "empty, or generated by lightnorm")
    parser.add_argument("--force", action="store_true",
                        help="replace an OUT generated from a different spec (only the files "
                             "its manifest lists are removed; other files stay)")
    parser.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                        help="generate for this clock period (the spec's hw.clock_ns = T: the "
                             "RTL's registers are placed for it, docs/timing.md)")


def cmd_generate(args: argparse.Namespace) -> int:
    from lightnorm.codegen import generate

    spec = load(args.spec).with_clock(getattr(args, "clock_ns", None))
    out = generate(spec, args.out, force=args.force)
    manifest = json.loads((out / "manifest.json").read_text())
    if args.json:
        emit_json({"spec": spec.name, "hash": spec.hash, "out": str(out),
                   "files": sorted(manifest.get("files", {}))})
    else:
        files = manifest.get("files", {})
        _console().print(f"generated {len(files)} files for {spec.name} in {out}")
    return EXIT_OK


def _verify_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape", default=VERIFY_SHAPE, metavar="N,C,H,W",
                        help=f"NCHW shape of the random batch (default {VERIFY_SHAPE})")
    parser.add_argument("--seed", type=cliargs.SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--pass", dest="pass_", choices=PASSES, default="both",
                        help="which pass to verify (default both)")


def report_verification(result: dict[str, Any], as_json: bool, what: str) -> int:
    """Print a csim/cosim comparison and return 0 when bit-exact, 1 otherwise."""
    if as_json:
        emit_json(result)
    else:
        console = _console()
        verdict = "bit-exact" if result["bit_exact"] else "MISMATCH"
        cycles = f", {result['cycles']:,} cycles" if "cycles" in result else ""
        console.print(f"{what} {result['spec']} ({result['pass']}): {result['elements']:,} "
                      f"words compared, {result['mismatches']:,} mismatches{cycles}: {verdict}")
        for m in result.get("first_mismatches", [])[:10]:
            console.print(f"  {m}")
    return EXIT_OK if result["bit_exact"] else EXIT_MISMATCH


def cmd_csim(args: argparse.Namespace) -> int:
    from lightnorm.verify import csim

    spec = load(args.spec)
    shape = parse_shape(args.shape)
    check_channel_elems(spec, shape[0] * shape[2] * shape[3])
    return report_verification(csim.compare(spec, shape, args.seed, args.pass_), args.json,
                               "C-simulation")


def _cosim_args(parser: argparse.ArgumentParser) -> None:
    _verify_args(parser)
    parser.add_argument("--waves", action="store_true",
                        help="build with FST tracing and keep the waveform of a failing run")
    cliargs.add_backend_argument(parser)


def cmd_cosim(args: argparse.Namespace) -> int:
    from lightnorm.verify import cosim

    spec = load(args.spec)
    shape = parse_shape(args.shape)
    check_channel_elems(spec, shape[0] * shape[2] * shape[3])
    result = cosim.compare(spec, shape, args.seed, args.pass_, waves=args.waves,
                           backend=args.backend)
    return report_verification(result, args.json, "co-simulation")


# --- the table of subcommands -----------------------------------------------------------------
COMMANDS: dict[str, Command] = {
    "presets": Command(cmd_presets, "list the built-in preset specs", takes_spec=False),
    "show": Command(cmd_show, "print a spec and the facts derived from it"),
    "validate": Command(cmd_validate, "check a spec; print 'ok: NAME (hash)' or the bad field"),
    "golden": Command(cmd_golden, "run the golden model forward and backward on random data "
                      "and report its error against the float64 ideal model",
                      arguments=_golden_args),
    "accuracy": Command(cmd_accuracy, ACCURACY_HELP, takes_spec=False,
                        arguments=add_accuracy_arguments),
    "quality": Command(cmd_quality, QUALITY_HELP, takes_spec=False,
                       arguments=add_quality_arguments),
    "parse": Command(cmd_parse, PARSE_HELP, takes_spec=False, arguments=add_parse_arguments),
    "quantize": Command(cmd_quantize, QUANTIZE_HELP, takes_spec=False,
                        arguments=add_quantize_arguments),
    "generate": Command(cmd_generate, "write the HLS C++, RTL and XLS DSLX of a spec",
                        arguments=_generate_args),
    "cosim": Command(cmd_cosim, "co-simulate the generated Verilog (Verilator + cocotb) against "
                     "the golden model, bit for bit", arguments=_cosim_args),
    "csim": Command(cmd_csim, "C-simulate the generated HLS C++ against the golden model, bit "
                    "for bit", arguments=_verify_args),
    "synth": Command(cmd_synth, SYNTH_HELP, arguments=add_synth_arguments),
    "estimate": Command(cmd_estimate, ESTIMATE_HELP, arguments=add_estimate_arguments),
    "units": Command(cmd_units, UNITS_HELP, takes_spec=False, arguments=add_units_arguments),
    "flow": Command(cmd_flow, FLOW_HELP, takes_spec=False, arguments=add_flow_arguments),
    "sweep": Command(cmd_sweep, SWEEP_HELP, takes_spec=False, arguments=add_sweep_arguments),
    "report": Command(cmd_report, REPORT_HELP, takes_spec=False, arguments=add_report_arguments),
    "regress": Command(cmd_regress, REGRESS_HELP, takes_spec=False,
                       arguments=add_regress_arguments),
    "hls": Command(cmd_hls, HLS_HELP, arguments=add_hls_arguments),
    "bench": Command(cmd_bench, BENCH_HELP, takes_spec=False, arguments=add_bench_arguments,
                     takes_json=False),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lightnorm",
        description="Generate, verify and cost LightNorm-style batch-normalization hardware "
        "from a declarative spec.",
        epilog="exit status: 0 ok, 1 verification mismatch, 2 bad input",
    )
    parser.add_argument("--version", action="version", version=f"lightnorm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if cmd.takes_spec:
            p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
        if cmd.takes_json:
            p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
        if cmd.arguments is not None:
            cmd.arguments(p)
        cliargs.share_types(p)
        p.set_defaults(_command=cmd)
    return parser


def _report(message: str) -> None:
    sys.stderr.write(f"lightnorm: error: {_one_line(message)}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)
        command: Command = args._command
        return command.run(args)
    except SpecError as exc:
        _report(str(exc))
        return EXIT_BAD_INPUT
    except LightnormError as exc:
        _report(str(exc))
        return exc.exit_code
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        _report(f"{where}{exc.strerror or exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
