"""DSLX -> IR -> optimized IR -> JIT callable or scheduled, pipelined Verilog, in-process.

Everything goes through ``xls.c_api`` of the PyPI package ``xls-python`` (no XLS binaries):
``convert_dslx_to_ir`` (the bundled DSLX standard library), ``optimize_ir`` with the unit's
function as top, then either ``Function.to_jit`` (verification: batches of inputs through
``jit_fn_predict``) or ``Package.schedule_and_codegen(generator="pipeline", ...)``.

Artifacts are cached on disk under ``$LIGHTNORM_CACHE/xls`` (:mod:`lightnorm.tools.cache`),
one directory per key; a key hashes the DSLX text, the function, the XLS version and every
option that shapes the output, so a cache entry is never stale. Entries are written to a
temporary directory and renamed into place (parallel workers race safely: the loser's identical
copy is dropped).

Any XLS failure (parse, type check, conversion, optimization, scheduling) is raised as
:class:`lightnorm.errors.ToolError` with one line naming the unit and the first line of XLS's
message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from lightnorm.errors import ToolError

from .cache import cache_root

DELAY_MODELS = ("sky130", "asap7", "unit")
DEFAULT_DELAY_MODEL = "sky130"
DEFAULT_CLOCK_NS = 10.0
XLS_PACKAGE = "xls-python"
T = TypeVar("T")


class BatchSignature(Protocol):
    """A verification wrapper ``uN[word][n_in] -> uN[wo][n_out]`` of one function
    (:class:`lightnorm.codegen.dslx.Batch`)."""

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> str: ...
    @property
    def word(self) -> int: ...
    @property
    def wo(self) -> int: ...
    @property
    def n_in(self) -> int: ...
    @property
    def n_out(self) -> int: ...


class DslxSource(Protocol):
    """A DSLX module as this layer needs it (:class:`lightnorm.codegen.dslx.DslxModule`)."""

    @property
    def name(self) -> str: ...
    @property
    def text(self) -> str: ...
    def batch_of(self, unit: Any) -> BatchSignature: ...


# ---- the XLS library ------------------------------------------------------------------------


def _c_api() -> Any:
    try:
        from xls import c_api
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolError(f"xls: the Python package {XLS_PACKAGE} is not installed "
                        f"(pip install {XLS_PACKAGE})") from e
    return c_api


@lru_cache(maxsize=1)
def xls_version() -> str:
    """Version of the installed ``xls-python`` (part of every cache key)."""
    try:
        from xls import _version
    except ImportError as e:  # pragma: no cover
        raise ToolError(f"xls: the Python package {XLS_PACKAGE} is not installed") from e
    return str(_version.version)


def _one_line(exc: BaseException) -> str:
    """XLS's message, first meaningful line, without the pass-pipeline trail."""
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    line = line.split("; Running pass")[0]
    return line[:400]


def _run(what: str, unit: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ToolError:
        raise
    except Exception as e:  # noqa: BLE001 - every XLS error becomes one ToolError line
        raise ToolError(f"xls: {what} of {unit} failed: {_one_line(e)}") from e


# ---- the disk cache -------------------------------------------------------------------------


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    h.update(f"xls-python {xls_version()}\0".encode())
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:32]


def _cache_get(root: Path | None, key: str, names: tuple[str, ...]) -> dict[str, str] | None:
    if root is None:
        return None
    d = root / key
    try:
        return {n: (d / n).read_text() for n in names}
    except OSError:
        return None


def _cache_put(root: Path | None, key: str, files: dict[str, str]) -> None:
    if root is None:
        return
    final = root / key
    if final.exists():
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.{uuid.uuid4().hex[:8]}.", dir=root))
        for n, text in files.items():
            (tmp / n).write_text(text)
        try:
            os.replace(tmp, final)
        except OSError:  # another process won the race: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:  # a read-only or full cache is not an error: the result is still returned
        return


def _root(cache: bool | Path | None) -> Path | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        return cache_root("xls")
    return Path(cache)


# ---- DSLX -> IR -> optimized IR -------------------------------------------------------------


@lru_cache(maxsize=16)
def _convert(text: str, module: str) -> str:
    c = _c_api()
    return str(c.convert_dslx_to_ir(text, f"{module}.x", module))


def dslx_to_ir(text: str, module: str, *, unit: str | None = None,
               cache: bool | Path | None = True) -> str:
    """IR of a whole DSLX module (every concrete function), cached."""
    root = _root(cache)
    key = cache_key("ir", module, text)
    hit = _cache_get(root, key, ("module.ir",))
    if hit is not None:
        return hit["module.ir"]
    ir = _run("DSLX to IR conversion", unit or f"module {module}", lambda: _convert(text, module))
    _cache_put(root, key, {"module.ir": ir, "module.x": text})
    return ir


def ir_name(module: str, fn: str) -> str:
    """The IR name of a DSLX function (``__<module>__<fn>``)."""
    return str(_c_api().mangle_dslx_name(module, fn))


def optimized_ir(mod: DslxSource, fn: str, *, cache: bool | Path | None = True) -> str:
    """Optimized IR of one function of a module (its callees inlined), cached."""
    root = _root(cache)
    key = cache_key("opt", mod.name, fn, mod.text)
    hit = _cache_get(root, key, ("opt.ir",))
    if hit is not None:
        return hit["opt.ir"]
    ir = dslx_to_ir(mod.text, mod.name, unit=fn, cache=cache)
    top = ir_name(mod.name, fn)
    c = _c_api()
    opt = _run("IR optimization", fn, lambda: str(c.optimize_ir(ir, top)))
    _cache_put(root, key, {"opt.ir": opt})
    return opt


# ---- JIT ------------------------------------------------------------------------------------


class Jit:
    """A JIT-compiled function with one array parameter ``uN[wi][n_in] -> uN[wo][n_out]``,
    evaluated on whole NumPy batches (``xls.c_api.jit_fn_predict``)."""

    def __init__(self, fn: str, opt_ir: str, wi: int, wo: int, n_in: int, n_out: int = 1):
        c = _c_api()
        self.fn, self.wi, self.wo, self.n_in, self.n_out = fn, wi, wo, n_in, n_out
        if wi > 64 or wo > 64:
            raise ValueError(f"{fn}: the batch interface carries at most 64-bit words")

        def build() -> Any:
            pkg = c.Package.parse_ir(opt_ir)
            return pkg.get_function(ir_name_of_top(opt_ir)).to_jit()

        self._jit = _run("JIT compilation", fn, build)

    def __call__(self, *words: np.ndarray) -> np.ndarray:
        """Inputs: ``n_in`` arrays of unsigned patterns (same length); returns uint64 patterns
        of shape (N,) when ``n_out == 1`` else (N, n_out)."""
        if len(words) != self.n_in:
            raise ValueError(f"{self.fn}: expected {self.n_in} input arrays, got {len(words)}")
        cols = [np.asarray(w).astype(np.uint64).reshape(-1) for w in words]
        n = cols[0].size
        if any(c.size != n for c in cols):
            raise ValueError(f"{self.fn}: input arrays differ in length")
        if n == 0:
            return np.zeros((0,) if self.n_out == 1 else (0, self.n_out), np.uint64)
        mask_in = np.uint64((1 << self.wi) - 1) if self.wi < 64 else np.uint64(~np.uint64(0))
        flat = np.stack([c & mask_in for c in cols], axis=1).reshape(-1).view(np.int64)
        flat = np.ascontiguousarray(flat)
        c = _c_api()
        out = _run("JIT run", self.fn, lambda: c.jit_fn_predict(
            self._jit, flat, self.wi, self.n_in, self.n_out))
        # the words come back sign-extended from their width: keep the low wo bits
        res = np.asarray(out).astype(np.int64).view(np.uint64).reshape(n, self.n_out)
        if self.wo < 64:
            res = res & np.uint64((1 << self.wo) - 1)
        return res.reshape(n) if self.n_out == 1 else res


def ir_name_of_top(opt_ir: str) -> str:
    """The top function of an optimized IR package (``top fn <name>(``)."""
    m = re.search(r"^top fn (\S+?)\(", opt_ir, re.MULTILINE)
    if m is None:
        raise ToolError("xls: optimized IR has no top function")
    return m.group(1)


def batch_jit(mod: DslxSource, batch: BatchSignature, *, cache: bool | Path | None = True) -> Jit:
    """The JIT of a verification wrapper (:class:`lightnorm.codegen.dslx.Batch`)."""
    opt = optimized_ir(mod, batch.name, cache=cache)
    return Jit(batch.fn, opt, batch.word, batch.wo, batch.n_in, batch.n_out)


def unit_jit(mod: DslxSource, unit: Any, *, cache: bool | Path | None = True) -> Jit:
    """The JIT of a unit of ``render_units(..., batch=True)``."""
    return batch_jit(mod, mod.batch_of(unit), cache=cache)


# ---- scheduling and Verilog -----------------------------------------------------------------


@dataclass(frozen=True)
class CodegenOptions:
    """What shapes the pipelined Verilog (every field is part of the cache key)."""

    clock_ps: int = int(DEFAULT_CLOCK_NS * 1000)
    delay_model: str = DEFAULT_DELAY_MODEL
    flop_inputs: bool = True
    flop_outputs: bool = True
    reset: str = "rst"
    input_valid: str = "in_valid"
    output_valid: str = "out_valid"

    def check(self) -> None:
        if self.delay_model not in DELAY_MODELS:
            raise ToolError(f"xls: unknown delay model {self.delay_model!r} (expected one of "
                            f"{', '.join(DELAY_MODELS)})")
        if self.clock_ps < 1:
            raise ToolError(f"xls: clock period {self.clock_ps} ps: expected a positive period")


@dataclass
class Pipeline:
    """A unit's scheduled, pipelined Verilog module and its shape."""

    unit: str  # DSLX function
    module: str  # Verilog module name
    verilog: str
    latency: int  # clock edges from in_valid/inputs to out_valid/out (I/O flops included)
    stages: int  # pipeline stages of the schedule (without the I/O flops)
    clock_ps: int
    delay_model: str
    xls_version: str
    cached: bool = False

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("verilog")
        d.pop("cached")
        return d


#: the control ports of XLS's generated modules (pipelines: all; combinational: ``out``)
CONTROL_PORTS = ("clk", "rst", "in_valid", "out_valid", "out")


@dataclass(frozen=True)
class Port:
    """A data input port of an XLS-generated module (``off``: its bit offset in a harness)."""

    name: str
    width: int
    off: int = 0


def ports(verilog: str, module: str) -> tuple[list[Port], int]:
    """Data input ports (in order) and the output width of an XLS-generated module, read from
    XLS's Verilog: scalar parameters are separate ports in declaration order, the result is
    ``out``."""
    m = re.search(rf"module {re.escape(module)}\((.*?)\);", verilog, re.DOTALL)
    if m is None:
        raise ToolError(f"xls: no module {module} in the Verilog")
    ins: list[Port] = []
    wo = 0
    for d, hi, name in re.findall(r"(input|output) wire (?:\[(\d+):0\] )?(\w+)", m.group(1)):
        w = int(hi) + 1 if hi else 1
        if d == "output" and name == "out":
            wo = w
        elif name not in CONTROL_PORTS:
            ins.append(Port(name, w))
    if wo == 0:
        raise ToolError(f"xls: module {module} has no 'out' port")
    return ins, wo


def valid_latency(verilog: str, in_valid: str, out_valid: str) -> int:
    """Registers on the valid chain from ``in_valid`` to ``out_valid`` in XLS's Verilog.

    XLS pipelines a valid bit alongside the data (one register per stage boundary and I/O
    flop); following ``out_valid`` back to ``in_valid`` through ``x <= y`` assignments counts
    the clock edges a sample takes.
    """
    src: dict[str, str] = {}
    for lhs, rhs in re.findall(r"^\s*(\w+)\s*<=\s*(\w+);", verilog, re.MULTILINE):
        src.setdefault(lhs, rhs)  # the reset branch assigns a literal (no \w+ match for 1'h0)
    m = re.search(rf"^\s*assign\s+{re.escape(out_valid)}\s*=\s*(\w+);", verilog, re.MULTILINE)
    node = m.group(1) if m else out_valid
    hops = 0
    while node != in_valid:
        if node not in src or hops > 10_000:
            raise ToolError(f"xls: cannot trace {out_valid} back to {in_valid} in the Verilog")
        node = src[node]
        hops += 1
    return hops


def pipeline(mod: DslxSource, fn: str, module_name: str | None = None,
             options: CodegenOptions | None = None, *,
             cache: bool | Path | None = True) -> Pipeline:
    """Schedule one function of a module and generate its pipelined Verilog (cached)."""
    opts = options or CodegenOptions()
    opts.check()
    name = module_name or fn
    root = _root(cache)
    key = cache_key("pipeline", mod.name, fn, name, json.dumps(asdict(opts), sort_keys=True),
                    mod.text)
    hit = _cache_get(root, key, ("meta.json", f"{name}.v"))
    if hit is not None:
        meta = json.loads(hit["meta.json"])
        return Pipeline(verilog=hit[f"{name}.v"], cached=True, **meta)
    opt = optimized_ir(mod, fn, cache=cache)
    c = _c_api()

    def gen() -> str:
        pkg = c.Package.parse_ir(opt)
        res = pkg.schedule_and_codegen(
            generator="pipeline", clock_period_ps=opts.clock_ps, delay_model=opts.delay_model,
            module_name=name, flop_inputs=opts.flop_inputs, flop_outputs=opts.flop_outputs,
            reset=opts.reset, reset_active_low=False, reset_asynchronous=False,
            reset_data_path=False, input_valid_signal=opts.input_valid,
            output_valid_signal=opts.output_valid, use_system_verilog=False)
        return str(res.get_verilog_text())

    verilog = _run(f"scheduling at {opts.clock_ps} ps ({opts.delay_model})", fn, gen)
    latency = valid_latency(verilog, opts.input_valid, opts.output_valid)
    stages = latency - int(opts.flop_inputs) - int(opts.flop_outputs) + 1
    res = Pipeline(unit=fn, module=name, verilog=verilog, latency=latency, stages=stages,
                   clock_ps=opts.clock_ps, delay_model=opts.delay_model,
                   xls_version=xls_version())
    _cache_put(root, key, {"meta.json": json.dumps(res.meta(), indent=2, sort_keys=True) + "\n",
                           f"{name}.v": verilog, "opt.ir": opt})
    return res


def combinational(mod: DslxSource, fn: str, module_name: str | None = None, *,
                  cache: bool | Path | None = True) -> Pipeline:
    """One function as a combinational Verilog module (XLS's ``combinational`` generator: no
    clock, no registers; ports = the function's parameters and ``out``), cached.

    Returned as a :class:`Pipeline` with ``latency = stages = 0``, ``clock_ps = 0`` and
    ``delay_model = "none"`` (nothing is scheduled)."""
    name = module_name or fn
    root = _root(cache)
    key = cache_key("combinational", mod.name, fn, name, mod.text)
    hit = _cache_get(root, key, ("meta.json", f"{name}.v"))
    if hit is not None:
        meta = json.loads(hit["meta.json"])
        return Pipeline(verilog=hit[f"{name}.v"], cached=True, **meta)
    opt = optimized_ir(mod, fn, cache=cache)
    c = _c_api()

    def gen() -> str:
        pkg = c.Package.parse_ir(opt)
        res = pkg.schedule_and_codegen(generator="combinational", module_name=name,
                                       use_system_verilog=False)
        return str(res.get_verilog_text())

    verilog = _run("combinational codegen", fn, gen)
    res = Pipeline(unit=fn, module=name, verilog=verilog, latency=0, stages=0, clock_ps=0,
                   delay_model="none", xls_version=xls_version())
    _cache_put(root, key, {"meta.json": json.dumps(res.meta(), indent=2, sort_keys=True) + "\n",
                           f"{name}.v": verilog, "opt.ir": opt})
    return res


# ---- lint -----------------------------------------------------------------------------------

WAIVER_FILE = "xls_lint_waivers.vlt"
# XLS declares each intermediate node as a full-width wire ``p<stage>_<node>_comb`` and often
# reads only some of its bits (the hidden bit of a significand, the carry of a rounding
# increment, the low bits a shift discards); Verilator -Wall reports each as UNUSEDSIGNAL. The
# waiver matches only that message on XLS's combinational node wires: every other warning,
# and UNUSEDSIGNAL on ports or registers, still fails the lint.
LINT_WAIVERS = """`verilator_config
// XLS codegen: partly used intermediate node wires (see lightnorm.tools.xls, docs/xls.md)
lint_off -rule UNUSEDSIGNAL -file "*" -match "Bits of signal are not used: 'p*_comb'*"
"""


def lint(p: Pipeline) -> str:
    """``verilator --lint-only -Wall`` of one pipelined unit with :data:`LINT_WAIVERS`; returns
    the log, raises :class:`ToolError` naming the unit (and the first warnings) otherwise."""
    from .verilator import lint as verilator_lint

    files = {f"{p.module}.v": p.verilog, WAIVER_FILE: LINT_WAIVERS}
    try:
        log = verilator_lint(files, p.module, extra=[WAIVER_FILE])
    except ToolError as e:
        log = e.tail
    found = [ln for ln in log.splitlines() if ln.startswith(("%Warning", "%Error"))]
    if found:
        raise ToolError(f"xls: verilator lint of {p.module} failed: " + " | ".join(found)[:600])
    return log


__all__ = [
    "CONTROL_PORTS", "CodegenOptions", "DEFAULT_CLOCK_NS", "DEFAULT_DELAY_MODEL", "DELAY_MODELS",
    "Jit", "LINT_WAIVERS", "Pipeline", "Port", "WAIVER_FILE", "batch_jit", "cache_key",
    "combinational", "dslx_to_ir", "ir_name", "lint", "optimized_ir", "pipeline", "ports",
    "unit_jit", "valid_latency", "xls_version",
]
