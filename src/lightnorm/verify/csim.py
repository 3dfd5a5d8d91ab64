"""C-simulation of the generated HLS C++: g++ + ctypes, bit-exact against the golden model.

The generated design (``OUT/hls``) and a small C ABI shim are compiled with the Xilinx
``ap_types`` headers (shipped inside the PyPI package ``hls4ml``; located without importing it)
into a shared library, cached by spec hash + template hash + compiler under
``$LIGHTNORM_CACHE/csim`` (default ``~/.cache/lightnorm/csim``). The library file name carries
that key, so a stale library is never loaded; builds are atomic (compile to a temporary name,
rename) and serialized per key with a file lock, so parallel test workers share one build.

:func:`compare` runs both passes on the golden model's *encoded* inputs and compares every output
word (y, its shared exponents, the per-channel scalars and running statistics; dx, dgamma,
dbeta). :func:`build_units` compiles single arithmetic units for the unit tests.

Speed: one call runs the top function on slices of consecutive channels on
:func:`csim_threads` threads at once (the shim, ``csim/abi.cpp.j2``); :func:`benchmark` (and
``lightnorm bench csim``) measures elements/s against the golden model.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import lightnorm
from lightnorm.tools.cache import cache_root
from lightnorm.tools.gxx import CXXFLAGS, compile_shared, compiler_id
from lightnorm.tools.locks import file_lock

from ..codegen import build_manifest, context, render_files
from ..codegen.context import library_files, testbench_shape
from ..codegen.env import render, template_hash
from ..codegen.generate import manifest_bytes
from ..errors import ToolError
from ..spec import BFPFormat, FPFormat, Spec, check_channel_elems
from ..spec import load as load_spec
from ..spec.formats import FormatView
from . import encoding, fpnum, golden

ABI_VERSION = "lightnorm-csim-abi-2"
ABI_FORWARD = ("x", "x_exp", "y", "y_exp", "gamma", "beta", "mean", "inv_sigma", "scale", "shift",
               "running_mean", "running_disp")
ABI_BACKWARD = ("x", "x_exp", "dy", "dy_exp", "dx", "dx_exp", "mean", "inv_sigma", "scale",
                "dgamma", "dbeta")
CONST_ORDER = ("inv_n", "c_k", "eps", "momentum", "unbias")
PASSES = ("forward", "backward", "both")
MAX_REPORTED = 10


def _key(*parts: object) -> str:
    blob = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ---- the design library -------------------------------------------------------------------


def _channel_stride(count: str) -> str:
    """Words per channel of an array port, from its element count ``long(C) * X`` or ``C``."""
    if count == "C":
        return "1"
    head = "long(C) * "
    if not count.startswith(head):
        raise AssertionError(f"unexpected port element count {count!r}")
    return count[len(head):]


def abi_context(spec: Spec) -> dict[str, Any]:
    ctx = context(spec)
    ctx["abi_version"] = ABI_VERSION
    passes = []
    for pass_, abi in (("forward", ABI_FORWARD), ("backward", ABI_BACKWARD)):
        ports = [dict(p, stride=_channel_stride(p["count"])) if p["array"] else p
                 for p in ctx[f"{pass_}_ports"]]
        passes.append((ctx[f"top_{pass_}"], pass_, ports, list(abi)))
    ctx["abi_passes"] = passes
    return ctx


def _sources(spec: Spec) -> dict[str, bytes]:
    """Every source file of a spec's C-simulation build: the generated tree and the shim."""
    files = dict(render_files(spec, ("hls",)))
    files["manifest.json"] = manifest_bytes(build_manifest(spec, files))
    files["abi.cpp"] = render("csim/abi.cpp.j2", abi_context(spec)).encode("utf-8")
    return files


def _content_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name, data in sorted(files.items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def build(spec: Spec) -> Path:
    """Compile (or find in the cache) the C-simulation library of a spec; returns its path.

    The cache key covers the spec hash, the template hash, the rendered sources themselves,
    the compiler and its flags, so an edited template can never reuse an old library.
    """
    files = _sources(spec)
    key = _key(spec.hash, template_hash(("hls", "csim")), _content_hash(files), compiler_id(),
               CXXFLAGS, ABI_VERSION)
    entry = cache_root("csim") / f"{spec.ident}-{key}"
    lib = entry / f"lib{spec.ident}-{key}.so"
    if lib.is_file():
        return lib
    with file_lock(entry / ".lock"):
        if lib.is_file():
            return lib
        src = entry / "src"
        shutil.rmtree(src, ignore_errors=True)
        for name, data in files.items():
            path = src / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        compile_shared([src / "abi.cpp"], [src / "hls"], lib, entry)
    return lib


_U64P = ctypes.POINTER(ctypes.c_uint64)


def _ptr(a: np.ndarray | None) -> Any:
    if a is None:
        return None
    assert a.dtype == np.uint64 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(_U64P)


@lru_cache(maxsize=64)
def _load(path: str, spec_hash: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    lib.ln_spec_hash.restype = ctypes.c_char_p
    lib.ln_abi_version.restype = ctypes.c_char_p
    if lib.ln_spec_hash().decode() != spec_hash or lib.ln_abi_version().decode() != ABI_VERSION:
        raise ToolError(f"C-simulation library {path} was built for another spec or ABI")
    for fn, names in ((lib.ln_forward, ABI_FORWARD), (lib.ln_backward, ABI_BACKWARD)):
        fn.argtypes = [_U64P] * len(names) + [ctypes.c_int64, ctypes.c_int64, _U64P,
                                              ctypes.c_int64]
        fn.restype = ctypes.c_int
    return lib


def _u64(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.uint64)


def csim_threads() -> int:
    """Threads of one C-simulation call: ``$LIGHTNORM_CSIM_THREADS``, else the CPUs this
    process may run on. The shim cuts the channels into that many slices (fewer for small
    tensors) and runs the top function on each slice at once."""
    env = os.environ.get("LIGHTNORM_CSIM_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ToolError(f"LIGHTNORM_CSIM_THREADS must be a positive integer, got {env!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class Design:
    """A compiled design: call its forward and backward on bit patterns.

    ``threads``: threads per call (None: :func:`csim_threads` at each call)."""

    spec: Spec
    lib: ctypes.CDLL
    path: Path
    threads: int | None = None

    def _threads(self) -> int:
        return self.threads if self.threads is not None else csim_threads()

    def _out(self, role: str, c: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        fmt = self.spec.storage.roles()[role]
        bits = np.zeros((c, fmt.padded_length(n)), np.uint64)
        exps = None
        if fmt.shared_exp_width:
            exps = np.zeros((c, fmt.block_count(n)), np.uint64)
        return bits, exps

    def forward(self, x: encoding.Encoded, gamma: np.ndarray, beta: np.ndarray,
                running_mean: np.ndarray, running_disp: np.ndarray,
                consts: dict[str, int]) -> dict[str, np.ndarray]:
        c, n = x.bits.shape[0], x.n
        y, y_exp = self._out("y", c, n)
        per = {k: np.zeros(c, np.uint64) for k in ("mean", "inv_sigma", "scale", "shift")}
        rm = np.array(_u64(running_mean), copy=True)
        rd = np.array(_u64(running_disp), copy=True)
        cv = np.array([consts[k] for k in CONST_ORDER], np.uint64)
        xb, xe, g, b = _u64(x.bits), _u64(x.exps), _u64(gamma), _u64(beta)
        rc = self.lib.ln_forward(
            _ptr(xb), _ptr(xe), _ptr(y), _ptr(y_exp), _ptr(g), _ptr(b),
            _ptr(per["mean"]), _ptr(per["inv_sigma"]), _ptr(per["scale"]), _ptr(per["shift"]),
            _ptr(rm), _ptr(rd), c, n, _ptr(cv), self._threads())
        if rc != 0:
            raise ToolError(f"C-simulation forward refused C={c}, n={n} (status {rc})")
        out = {"y": y, **per, "running_mean": rm, "running_disp": rd}
        if y_exp is not None:
            out["y_exp"] = y_exp
        return out

    def backward(self, x: encoding.Encoded, dy: encoding.Encoded, mean: np.ndarray,
                 inv_sigma: np.ndarray, scale: np.ndarray,
                 consts: dict[str, int]) -> dict[str, np.ndarray]:
        c, n = x.bits.shape[0], x.n
        dx, dx_exp = self._out("dx", c, n)
        dgamma = np.zeros(c, np.uint64)
        dbeta = np.zeros(c, np.uint64)
        cv = np.array([consts[k] for k in CONST_ORDER], np.uint64)
        arrs = [_u64(a) for a in (x.bits, x.exps, dy.bits, dy.exps, mean, inv_sigma, scale)]
        rc = self.lib.ln_backward(
            _ptr(arrs[0]), _ptr(arrs[1]), _ptr(arrs[2]), _ptr(arrs[3]), _ptr(dx), _ptr(dx_exp),
            _ptr(arrs[4]), _ptr(arrs[5]), _ptr(arrs[6]), _ptr(dgamma), _ptr(dbeta), c, n,
            _ptr(cv), self._threads())
        if rc != 0:
            raise ToolError(f"C-simulation backward refused C={c}, n={n} (status {rc})")
        out = {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}
        if dx_exp is not None:
            out["dx_exp"] = dx_exp
        return out


def design(spec: Spec | str) -> Design:
    """The compiled C-simulation of a spec (built on first use, then cached)."""
    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    path = build(sp)
    return Design(sp, _load(str(path), sp.hash), path)


# ---- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    x: np.ndarray
    dy: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray  # values of S
    running_disp: np.ndarray


def make_inputs(spec: Spec, shape: Sequence[int], seed: int = 0,
                data: dict[str, Any] | None = None) -> Inputs:
    """Random float64 inputs (per-channel offsets and spreads), overridden by ``data``."""
    data = dict(data or {})
    unknown = set(data) - {"x", "dy", "gamma", "beta", "running_mean", "running_disp"}
    if unknown:
        raise ValueError(f"unknown data keys: {sorted(unknown)}")
    if "x" in data:
        shape = np.asarray(data["x"]).shape
    if len(shape) != 4:
        raise ValueError(f"shape must be (N, C, H, W), got {tuple(shape)}")
    nn, c, h, w = (int(v) for v in shape)
    check_channel_elems(spec, nn * h * w)
    rng = np.random.default_rng(seed)
    offs = rng.uniform(-2.0, 2.0, size=(1, c, 1, 1))
    spread = np.exp(rng.uniform(-2.0, 1.5, size=(1, c, 1, 1)))
    x = offs + spread * rng.standard_normal((nn, c, h, w))
    dy = np.exp(rng.uniform(-4.0, 0.0, size=(1, c, 1, 1))) * rng.standard_normal((nn, c, h, w))
    vals = {
        "x": x, "dy": dy,
        "gamma": rng.uniform(0.5, 1.5, size=c), "beta": rng.uniform(-0.5, 0.5, size=c),
        "running_mean": rng.uniform(-1.0, 1.0, size=c),
        "running_disp": rng.uniform(0.5, 2.0, size=c),
    }
    for k, v in data.items():
        arr = np.asarray(v, dtype=np.float64)
        vals[k] = np.broadcast_to(arr, (c,)).copy() if arr.ndim <= 1 and k not in ("x", "dy") \
            else arr
    if vals["dy"].shape != vals["x"].shape:
        raise ValueError(f"dy has shape {vals['dy'].shape}, x has {vals['x'].shape}")
    s = spec.scalar
    rm = fpnum.round_array(vals["running_mean"], s, "nearest")  # host values: nearest
    rd = fpnum.round_array(vals["running_disp"], s, "nearest")
    return Inputs(vals["x"], vals["dy"], vals["gamma"], vals["beta"], rm, rd)


# ---- comparison ----------------------------------------------------------------------------


class _Scoreboard:
    def __init__(self) -> None:
        self.elements = 0
        self.mismatches = 0
        self.first: list[dict[str, Any]] = []
        self.tensors: dict[str, dict[str, int]] = {}

    def check(self, name: str, expected: np.ndarray, got: np.ndarray) -> None:
        e = np.asarray(expected, dtype=np.uint64)
        g = np.asarray(got, dtype=np.uint64)
        if e.shape != g.shape:
            raise AssertionError(f"{name}: golden shape {e.shape}, C-simulation shape {g.shape}")
        bad = np.argwhere(e != g)
        self.elements += e.size
        self.mismatches += len(bad)
        self.tensors[name] = {"elements": int(e.size), "mismatches": int(len(bad))}
        for idx in bad[: max(0, MAX_REPORTED - len(self.first))]:
            t = tuple(int(i) for i in idx)
            self.first.append({"tensor": name, "index": list(t),
                               "expected": hex(int(e[t])), "got": hex(int(g[t]))})


def compare(spec: Spec | str, shape: Sequence[int] = (2, 3, 4, 5), seed: int = 0,
            pass_: str = "both", data: dict[str, Any] | None = None) -> dict[str, Any]:
    """C-simulation vs golden model, bit for bit, on random (or given) data.

    ``data`` may give ``x`` and ``dy`` (NCHW float64; x's shape then wins over ``shape``),
    ``gamma``, ``beta``, ``running_mean``, ``running_disp`` (per channel or scalars).
    Backward runs on the C-simulated forward's mean, inv_sigma and scale, as the hardware does.
    """
    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    if pass_ not in PASSES:
        raise ValueError(f"pass_ must be one of {PASSES}, got {pass_!r}")
    inp = make_inputs(sp, shape, seed, data)
    nn, c, h, w = inp.x.shape
    n = nn * h * w
    consts = golden.run_constants(sp, n)
    dsg = design(sp)
    sb = _Scoreboard()

    fw = golden.forward(sp, inp.x, inp.gamma, inp.beta, running_mean=inp.running_mean,
                        running_disp=inp.running_disp)
    s_bits = lambda a: fpnum.encode_array(a, sp.scalar)  # noqa: E731
    cf = dsg.forward(fw.x_enc, fw.gamma_bits, fw.beta_bits, s_bits(inp.running_mean),
                     s_bits(inp.running_disp), consts)
    if pass_ in ("forward", "both"):
        sb.check("y", fw.y_enc.bits, cf["y"])
        if fw.y_enc.exps is not None:
            sb.check("y_exp", fw.y_enc.exps, cf["y_exp"])
        for k in ("mean", "inv_sigma", "scale", "shift"):
            sb.check(k, getattr(fw, f"{k}_bits"), cf[k])
        sb.check("running_mean", s_bits(fw.running_mean), cf["running_mean"])
        disp = fw.running_var if sp.bn.mode == "standard" else fw.running_sigma
        assert disp is not None
        sb.check("running_var" if sp.bn.mode == "standard" else "running_sigma", s_bits(disp),
                 cf["running_disp"])
    if pass_ in ("backward", "both"):
        bw = golden.backward(sp, inp.x, inp.dy, inp.gamma, inp.beta, saved=fw)
        cb = dsg.backward(bw.x_enc, bw.dy_enc, cf["mean"], cf["inv_sigma"], cf["scale"], consts)
        sb.check("dx", bw.dx_enc.bits, cb["dx"])
        if bw.dx_enc.exps is not None:
            sb.check("dx_exp", bw.dx_enc.exps, cb["dx_exp"])
        sb.check("dgamma", bw.dgamma_bits, cb["dgamma"])
        sb.check("dbeta", bw.dbeta_bits, cb["dbeta"])
    return {
        "spec": sp.name,
        "spec_hash": sp.hash,
        "pass": pass_,
        "shape": [int(v) for v in inp.x.shape],
        "seed": seed,
        "elements": sb.elements,
        "mismatches": sb.mismatches,
        "bit_exact": sb.mismatches == 0 and sb.elements > 0,
        "first_mismatches": sb.first,
        "tensors": sb.tensors,
    }


# ---- test vectors for the generated testbench ----------------------------------------------


def _write_words(path: Path, words: np.ndarray) -> None:
    path.write_text("".join(f"{int(v):x}\n" for v in np.asarray(words).reshape(-1)),
                    encoding="ascii")


def write_vectors(spec: Spec | str, out_dir: str | os.PathLike[str],
                  shape: Sequence[int] | None = None, seed: int = 0,
                  data: dict[str, Any] | None = None) -> Path:
    """Inputs and golden expectations as hex files for ``tb_<ident>.cpp`` (and Vitis csim)."""
    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    inp = make_inputs(sp, shape or testbench_shape(sp), seed, data)
    nn, c, h, w = inp.x.shape
    n = nn * h * w
    consts = golden.run_constants(sp, n)
    fw = golden.forward(sp, inp.x, inp.gamma, inp.beta, running_mean=inp.running_mean,
                        running_disp=inp.running_disp)
    bw = golden.backward(sp, inp.x, inp.dy, inp.gamma, inp.beta, saved=fw)
    s_bits = lambda a: fpnum.encode_array(a, sp.scalar)  # noqa: E731
    disp = fw.running_var if sp.bn.mode == "standard" else fw.running_sigma
    assert disp is not None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.txt").write_text(f"{c} {n}\n", encoding="ascii")
    _write_words(out / "consts.hex", np.array([consts[k] for k in CONST_ORDER], np.uint64))
    files: dict[str, np.ndarray | None] = {
        "x": fw.x_enc.bits, "x_exp": fw.x_enc.exps, "dy": bw.dy_enc.bits,
        "dy_exp": bw.dy_enc.exps, "gamma": fw.gamma_bits, "beta": fw.beta_bits,
        "running_mean": s_bits(inp.running_mean), "running_disp": s_bits(inp.running_disp),
        "expect_y": fw.y_enc.bits, "expect_y_exp": fw.y_enc.exps,
        "expect_mean": fw.mean_bits, "expect_inv_sigma": fw.inv_sigma_bits,
        "expect_scale": fw.scale_bits, "expect_shift": fw.shift_bits,
        "expect_running_mean": s_bits(fw.running_mean), "expect_running_disp": s_bits(disp),
        "expect_dx": bw.dx_enc.bits, "expect_dx_exp": bw.dx_enc.exps,
        "expect_dgamma": bw.dgamma_bits, "expect_dbeta": bw.dbeta_bits,
    }
    for name, words in files.items():
        if words is not None:
            _write_words(out / f"{name}.hex", words)
    return out


# ---- single arithmetic units (unit tests) --------------------------------------------------


@dataclass
class Units:
    """Compiled single units (symbols named by their parameters, e.g. ``fp_add_e4m3_rne``):
    each method maps arrays of uint64 bit patterns to the unit's result patterns."""

    lib: ctypes.CDLL
    path: Path

    def _fn(self, name: str, nargs: int) -> Any:
        fn = getattr(self.lib, name)
        fn.argtypes = [_U64P] * nargs + [ctypes.c_int64]
        fn.restype = None
        return fn

    def binary(self, op: str, fmt: FPFormat, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, np.uint64)
        b = np.ascontiguousarray(np.broadcast_to(b, a.shape), np.uint64)
        out = np.zeros_like(a)
        self._fn(f"fp_{op}_{fmt.view.ftag}", 3)(_ptr(a), _ptr(b), _ptr(out), a.size)
        return out

    def unary(self, op: str, fmt: FPFormat, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, np.uint64)
        out = np.zeros_like(a)
        self._fn(f"fp_{op}_{fmt.view.ftag}", 2)(_ptr(a), _ptr(out), a.size)
        return out

    def cvt(self, src: FPFormat, dst: FPFormat, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, np.uint64)
        out = np.zeros_like(a)
        name = f"fp_cvt_{src.view.ftag}_to_{dst.view.ftag}"
        self._fn(name, 2)(_ptr(a), _ptr(out), a.size)
        return out

    def bfp_encode(self, fmt: BFPFormat, src: FPFormat, v: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Encode (nblocks * block) lane patterns of ``src``; returns (elements, exponents)."""
        v = np.ascontiguousarray(v, np.uint64).reshape(-1)
        nblk = v.size // fmt.block
        out = np.zeros(nblk * fmt.block, np.uint64)
        exps = np.zeros(nblk, np.uint64)
        name = f"bfp_encode_{fmt.view.ftag}_from_{src.view.ftag}"
        self._fn(name, 3)(_ptr(v), _ptr(out), _ptr(exps), nblk)
        return out, exps


def build_units(fp_formats: Iterable[FPFormat],
                cvts: Iterable[tuple[FPFormat, FPFormat]] = (),
                bfps: Iterable[tuple[BFPFormat, FPFormat]] = ()) -> Units:
    """Compile (or find in the cache) a library of single units over the given formats."""
    fps = {f.view.name: f.view for f in fp_formats}
    cv = [{"src": a.view, "dst": b.view} for a, b in cvts]
    bf = [{"fmt": b.view, "src": p.view} for b, p in bfps]
    types: dict[str, FormatView] = dict(fps)
    for c in cv:
        types.setdefault(c["src"].name, c["src"])
        types.setdefault(c["dst"].name, c["dst"])
    for b in bf:
        types.setdefault(b["fmt"].name, b["fmt"])
        types.setdefault(b["src"].name, b["src"])
    ctx = {"version": lightnorm.__version__, "fp_units": list(fps.values()), "cvt_units": cv,
           "bfp_units": bf, "types": list(types.values())}
    files = {f"hls/{name}": render(template, {}).encode("utf-8")
             for template, name in {"hls/ln_ap.h.j2": "ln_ap.h", **library_files()}.items()}
    files["units_abi.cpp"] = render("csim/units_abi.cpp.j2", ctx).encode("utf-8")
    key = _key(_content_hash(files), template_hash(("hls", "csim")), compiler_id(), CXXFLAGS)
    entry = cache_root("csim") / f"units-{key}"
    lib = entry / f"libunits-{key}.so"
    if not lib.is_file():
        with file_lock(entry / ".lock"):
            if not lib.is_file():
                for name, data in files.items():
                    (entry / name).parent.mkdir(parents=True, exist_ok=True)
                    (entry / name).write_bytes(data)
                compile_shared([entry / "units_abi.cpp"], [entry / "hls"], lib, entry)
    return Units(ctypes.CDLL(str(lib)), lib)


# ---- benchmark -------------------------------------------------------------------------------


def benchmark(spec: Spec | str = "lightnorm", shape: Sequence[int] = (16, 16, 32, 32),
              seed: int = 0, repeat: int = 5, threads: int | None = None) -> dict[str, Any]:
    """C-simulation elements/s next to golden-model elements/s on the same data, one run.

    Times forward and backward separately, best of ``repeat`` rounds; each round runs the four
    timed calls one after the other (golden forward, golden backward, C-simulation forward,
    C-simulation backward), so that a load change on a shared machine hits both sides alike.
    The golden model is warmed up first (numba compilation is not timed), C-simulation is timed
    through its ctypes call on ``threads`` threads (None: :func:`csim_threads`). Both backward
    passes reuse the forward statistics (``saved=``), as the hardware does.
    """
    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    inp = make_inputs(sp, shape, seed)
    nn, c, h, w = inp.x.shape
    n = nn * h * w
    elems = c * n
    consts = golden.run_constants(sp, n)
    dsg = design(sp)
    dsg.threads = threads if threads is not None else csim_threads()
    fw = golden.forward(sp, inp.x, inp.gamma, inp.beta)  # warm-up (numba) + inputs
    bw = golden.backward(sp, inp.x, inp.dy, inp.gamma, inp.beta, saved=fw)
    rm = fpnum.encode_array(inp.running_mean, sp.scalar)
    rd = fpnum.encode_array(inp.running_disp, sp.scalar)
    cf = dsg.forward(fw.x_enc, fw.gamma_bits, fw.beta_bits, rm, rd, consts)  # warm-up

    calls = {
        "golden_forward": lambda: golden.forward(sp, inp.x, inp.gamma, inp.beta),
        "golden_backward": lambda: golden.backward(sp, inp.x, inp.dy, inp.gamma, inp.beta,
                                                   saved=fw),
        "csim_forward": lambda: dsg.forward(fw.x_enc, fw.gamma_bits, fw.beta_bits, rm, rd,
                                            consts),
        "csim_backward": lambda: dsg.backward(bw.x_enc, bw.dy_enc, cf["mean"], cf["inv_sigma"],
                                              cf["scale"], consts),
    }
    best = {k: float("inf") for k in calls}
    for _ in range(max(1, repeat)):
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    res: dict[str, Any] = {"spec": sp.name, "shape": [nn, c, h, w], "elements": elems,
                           "repeat": repeat, "numba_threads": _numba_threads(),
                           "csim_threads": dsg.threads}
    for pass_ in ("forward", "backward"):
        tg, tc = best[f"golden_{pass_}"], best[f"csim_{pass_}"]
        res[pass_] = {
            "golden_s": tg, "csim_s": tc,
            "golden_elements_per_s": elems / tg, "csim_elements_per_s": elems / tc,
            "csim_over_golden": (elems / tc) / (elems / tg),
        }
    return res


def _numba_threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover - numba is a dependency
        return 0
