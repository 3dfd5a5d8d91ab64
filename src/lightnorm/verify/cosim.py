"""Co-simulation of the generated RTL with Verilator (+ cocotb), bit-exact against the golden model.

``compare(spec, shape, ...)`` runs the forward and/or backward pass of ``lightnorm_top`` in a
Verilator model driven by cocotb and compares every output pattern with
:mod:`lightnorm.verify.golden`. The Verilator model is built once per spec hash into
``$LIGHTNORM_CACHE/cosim/<hash>`` (:func:`lightnorm.tools.cache.cache_root`) and reused.

The testbench has two halves (docs/rtl.md, "Co-simulation"): the cycle-level part of the driver
and monitor is HDL (``lightnorm_tb``: beat memories, valid with random idle cycles, ready with
random back-pressure, both from LFSRs seeded by cocotb), so no Python runs per clock; the cocotb
test (``lightnorm.verify.cocotb_tb.test_lightnorm``) loads the stimulus of a run in bulk, starts
the run, waits for ``done``, reads back what the monitors captured and scores it against the
expected patterns precomputed here with NumPy.

This module also builds the plain Verilator C++ harnesses: the arithmetic-unit harness of the
unit tests and the bare benchmark harness (:mod:`lightnorm.bench.cosim`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightnorm.errors import ToolError
from lightnorm.tools import verilator as vlt
from lightnorm.tools.cache import cache_root
from lightnorm.tools.locks import file_lock

from ..backends import DEFAULT_BACKEND, get_backend
from ..codegen import rtl
from ..spec import Spec, StorageFormat
from . import fpnum

TB_DEPTH_BEATS = 1 << 13  # beats per stream and run the harness memories hold
TB_DEPTH_CHANNELS = 1 << 8  # channels per run
COCOTB_MODULE = "lightnorm.verify.cocotb_tb.test_lightnorm"


# ---- arithmetic-unit harness ---------------------------------------------------------------

UNIT_MAIN = r"""// Bulk driver of unit_harness: reads (sel | iterative << 32 | latency << 40, a, b)
// uint64 triples from argv[1], writes one uint64 result per vector to argv[2]. A pipelined
// unit (latency > 0) gets a run of consecutive vectors as a stream, one per enabled clock
// edge, with pseudo-random stall cycles (en low, other inputs) in between.
#include <cstdint>
#include <cstdio>
#include <vector>
#include "verilated.h"
#include "Vunit_harness.h"

static void tick(Vunit_harness* t) {
    t->clk = 1; t->eval();
    t->clk = 0; t->eval();
}

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    std::FILE* fi = std::fopen(argv[1], "rb");
    if (!fi) { std::perror(argv[1]); return 2; }
    std::vector<uint64_t> v;
    uint64_t buf[3 * 4096];
    size_t got;
    while ((got = std::fread(buf, sizeof(uint64_t), 3 * 4096, fi)) > 0)
        v.insert(v.end(), buf, buf + got);
    std::fclose(fi);
    const size_t n = v.size() / 3;
    std::vector<uint64_t> out(n);
    VerilatedContext ctx;
    Vunit_harness* t = new Vunit_harness(&ctx);
    uint64_t lcg = 12345;
    t->clk = 0; t->start = 0; t->en = 1; t->rst = 1; tick(t); tick(t); t->rst = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint64_t s = v[3 * i];
        t->sel = (uint32_t)(s & 0xffffffffu);
        t->a = v[3 * i + 1];
        t->b = v[3 * i + 2];
        const size_t lat = (size_t)((s >> 40) & 0xff);
        if (lat) {  // the run of vectors of this unit, streamed
            size_t k = i;
            while (k < n && v[3 * k] == s) ++k;
            for (size_t c = 0; c + 1 < k - i + lat; ++c) {
                lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
                if ((lcg >> 62) == 0) {  // a stall: en low, inputs that must not matter
                    t->en = 0; t->a = lcg; t->b = ~lcg; tick(t); t->en = 1;
                }
                const size_t j = c < k - i ? i + c : k - 1;
                t->a = v[3 * j + 1];
                t->b = v[3 * j + 2];
                tick(t);
                if (c + 1 >= lat) out[i + c + 1 - lat] = t->y;
            }
            i = k - 1;
            continue;
        }
        if ((s >> 32) & 1) {
            t->start = 1; tick(t); t->start = 0;
            int guard = 0;
            while (!t->valid && guard++ < 1000) tick(t);
            if (!t->valid) { std::fprintf(stderr, "unit %u never finished\n", t->sel); return 1; }
        } else {
            t->eval();
        }
        out[i] = t->y;
    }
    std::FILE* fo = std::fopen(argv[2], "wb");
    if (!fo) { std::perror(argv[2]); return 2; }
    std::fwrite(out.data(), sizeof(uint64_t), n, fo);
    std::fclose(fo);
    t->final();
    delete t;
    return 0;
}
"""


@dataclass
class UnitHarness:
    """A built unit harness: ``run(index, a, b)`` drives unit ``index`` with arrays of patterns."""

    units: list[rtl.Unit]
    exe: Path

    @property
    def latency(self) -> list[int]:
        """Clock edges through each unit (its registers)."""
        return [len(u.cuts) for u in self.units]

    def run_many(self, jobs: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Several (unit index, a, b) batches in one harness process."""
        parts = []
        for idx, a, b in jobs:
            a = np.asarray(a, np.uint64).reshape(-1)
            b = np.broadcast_to(np.asarray(b, np.uint64), a.shape).reshape(-1)
            u = self.units[idx]
            sel = np.uint64(idx | (int(u.iterative) << 32) | (self.latency[idx] << 40))
            tri = np.empty((a.size, 3), np.uint64)
            tri[:, 0] = sel
            tri[:, 1] = a
            tri[:, 2] = b
            parts.append(tri)
        with tempfile.TemporaryDirectory(prefix="ln_units_") as tmp:
            fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            np.concatenate(parts).tofile(fin)
            vlt.run([str(self.exe), str(fin), str(fout)], Path(tmp), Path(tmp) / "run.log",
                     "unit harness")
            res = np.fromfile(fout, np.uint64)
        out, pos = [], 0
        for p in parts:
            out.append(res[pos:pos + len(p)])
            pos += len(p)
        return out

    def run(self, idx: int, a: np.ndarray, b: np.ndarray | int = 0) -> np.ndarray:
        return self.run_many([(idx, np.asarray(a), np.asarray(b))])[0]


def build_unit_harness(units: list[rtl.Unit], build_dir: Path | None = None) -> UnitHarness:
    files = rtl.render_unit_harness(units)
    key = vlt.digest(files)[:16]
    d = build_dir or cache_root("cosim") / f"units-{key}"
    exe = vlt.build_cpp(files, rtl.UNIT_TOP, UNIT_MAIN, d, cflags="-O1")
    return UnitHarness(units, exe)


def unit_reference(unit: rtl.Unit, a_bits: np.ndarray, b_bits: np.ndarray | None = None
                   ) -> np.ndarray:
    """Expected result patterns of a unit from :mod:`lightnorm.verify.fpnum`."""
    a = fpnum.decode_array(np.asarray(a_bits, np.uint64).astype(np.int64), unit.fin)
    if unit.kind == "cvt":
        r = fpnum.round_array(a, unit.fout)
    elif unit.kind in ("recip", "sqrt"):
        r = fpnum.op_array(unit.kind, a, None, unit.fout)
    else:
        assert b_bits is not None
        b = fpnum.decode_array(np.asarray(b_bits, np.uint64).astype(np.int64), unit.fin)
        r = fpnum.op_array(unit.kind, a, b, unit.fout)
    return fpnum.encode_array(r, unit.fout)


# ---- the co-simulation model (cocotb + Verilator), one build per spec ----------------------

PASSES = ("forward", "backward", "both")
def _backend_suffix(backend: str) -> str:
    """The model directory's and key's part naming the backend ("" for the default)."""
    tag = get_backend(backend).cache_tag()
    return f"-{''.join(tag)}" if tag else ""


def model_files(spec: Spec, backend: str = DEFAULT_BACKEND) -> dict[str, str]:
    """Design (of ``backend``, :func:`lightnorm.backends.get_backend`) + harness sources of the
    co-simulation model."""
    design = get_backend(backend).render(spec)
    return {**design, **rtl.render_tb(spec, TB_DEPTH_BEATS, TB_DEPTH_CHANNELS)}


def model_dir(spec: Spec, waves: bool = False, cflags: str = vlt.TEST_CFLAGS,
              backend: str = DEFAULT_BACKEND) -> Path:
    """``<cache>/<spec hash>``: the tests' model; variants get a suffix (-fst, -O1, and a
    backend's cache tag: -xls<version>)."""
    suffix = ("-fst" if waves else "") + ("" if cflags == vlt.TEST_CFLAGS else cflags)
    return cache_root("cosim") / (spec.hash + _backend_suffix(backend) + suffix)


def build_model(spec: Spec, waves: bool = False, cflags: str = vlt.TEST_CFLAGS,
                backend: str = DEFAULT_BACKEND) -> Path:
    """Build (once per spec hash and sources) the Verilator model of ``lightnorm_tb``.

    The command is the one cocotb's Verilator runner issues (its ``verilator.cpp`` main, VPI,
    the cocotb VPI library, ``Vtop`` prefix) with one change: ``--public-depth 1`` instead of
    ``--public-flat-rw``. Making every internal signal of a 16-lane datapath public produces a
    VPI symbol table that g++ needs tens of minutes to compile; cocotb only touches the
    harness's ports. ``runner.test`` then runs the binary as usual.
    """
    import cocotb_tools.config as ccfg

    if waves and not any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include")):
        raise ToolError("FST waveforms need the lz4 header (Debian: apt-get install liblz4-dev)")
    files = model_files(spec, backend)
    flags = [*vlt.VLT_OPT, "-CFLAGS", cflags] + (["--trace-fst", "--trace-structs"] if waves
                                                  else [])
    tag = _backend_suffix(backend)
    # the binary's runpath names this environment's cocotb library: a model built from another
    # virtual environment (moved or deleted) would not load
    key = vlt.digest(files, *flags, vlt.tool_env()["CXXFLAGS"], str(ccfg.libs_dir),
                  *([tag] if tag else []))
    d = model_dir(spec, waves, cflags, backend)
    # one build folder per key: processes of other environments or source trees sharing the
    # cache (a fresh clone's virtual environment beside a checkout's) build their own model
    # instead of replacing one that another process is about to run
    bdir = d / f"build-{key[:16]}"
    exe = bdir / rtl.TB_TOP
    with file_lock(d.parent / f"{d.name}.lock"):
        stamp = bdir / "stamp"
        if exe.exists() and stamp.exists() and stamp.read_text() == key:
            return bdir
        src = d / f"src-{key[:16]}"
        for sub in (bdir, src):
            if sub.exists():  # an interrupted build of this key
                shutil.rmtree(sub)
        vlt.write_tree(src, files)
        main_cpp = Path(ccfg.share_dir) / "lib" / "verilator" / "verilator.cpp"
        libs = ccfg.libs_dir
        argv = ["verilator", "--cc", "--exe", "-Mdir", str(bdir), "--top-module", rtl.TB_TOP,
                "--vpi", "--public-depth", "1", "--prefix", "Vtop", "-o", rtl.TB_TOP,
                "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
                *flags, str(main_cpp), *[str(src / f) for f in rtl.verilog_sources(files)]]
        bdir.mkdir(parents=True)
        vlt.verilate_and_make(argv, bdir, "Vtop", d, f"Verilator build of {spec.name}", cflags,
                          waves)
        stamp.write_text(key)
    return bdir


def default_data(spec: Spec, shape: tuple[int, int, int, int], seed: int = 0
                 ) -> dict[str, np.ndarray]:
    """Random test data: per-channel offset and spread, gradients, affine and running stats."""
    rng = np.random.default_rng(seed)
    n_, c, h, w = shape
    spread = np.exp(rng.uniform(-1.5, 1.5, c))[None, :, None, None]
    offset = rng.uniform(-2.0, 2.0, c)[None, :, None, None]
    return {
        "x": rng.standard_normal(shape) * spread + offset,
        "dy": rng.standard_normal(shape) * np.exp(rng.uniform(-2.0, 1.0, c))[None, :, None, None],
        "gamma": 1.0 + 0.25 * rng.standard_normal(c),
        "beta": 0.5 * rng.standard_normal(c),
        "running_mean": 0.2 * rng.standard_normal(c),
        "running_disp": 1.0 + 0.2 * np.abs(rng.standard_normal(c)),
    }


def _beats(enc: Any, fmt: StorageFormat, lanes: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(C*B, lanes) element patterns and (C*B,) exponent fields of an encoded tensor."""
    bits = np.asarray(enc.bits, np.uint64)
    c = bits.shape[0]
    want = b * lanes
    if bits.shape[1] < want:
        bits = np.concatenate([bits, np.zeros((c, want - bits.shape[1]), np.uint64)], axis=1)
    lanes_bits = bits[:, :want].reshape(c * b, lanes)
    if fmt.shared_exp_width:  # a beat lies in one block: its block's exponent field
        idx = (np.arange(b) * lanes) // fmt.block
        exps = np.asarray(enc.exps, np.uint64)[:, idx].reshape(c * b)
    else:
        exps = np.zeros(c * b, np.uint64)
    return lanes_bits, exps


def _stream_text(lanes_bits: np.ndarray, exps: np.ndarray, fmt: StorageFormat,
                 lanes: int) -> str:
    from .cocotb_tb.hexio import pack_words

    v = fmt.view
    fields = [(lanes_bits[:, j], v.w) for j in range(lanes)] + [(exps, v.xw)]
    return pack_words(fields, lanes_bits.shape[0])


@dataclass
class Case:
    """One comparison: data of one NCHW shape, one pass or both."""

    name: str
    shape: tuple[int, int, int, int]
    seed: int = 0
    pass_: str = "both"
    data: dict[str, Any] | None = None


def edge_shape(spec: Spec) -> tuple[int, int, int, int]:
    """A small NCHW shape whose n is not a multiple of the lanes nor of any BFP block."""
    lanes = spec.hw.lanes
    blocks = [f.block for f in spec.storage.roles().values()]
    g = max([lanes, *blocks])
    n = max(spec.min_channel_elems(), 2 * g + 1, 3 * lanes + 1, 9)
    divisors = [d for d in {lanes, *blocks} if d > 1]
    while any(n % d == 0 for d in divisors):
        n += 1
    n = min(n, spec.hw.max_channel_elems)
    return (1, 6, 1, n)


def edge_data(spec: Spec, shape: tuple[int, int, int, int], seed: int = 0
              ) -> dict[str, np.ndarray]:
    """Degenerate channels (docs/numerics.md section 10), one per channel (cycled):
    all zero, constant, saturating (far above every format's maximum), below the smallest
    normal of the storage format, a mix of huge, tiny and zero values, a single outlier."""
    rng = np.random.default_rng(seed)
    d = default_data(spec, shape, seed)
    x, dy = d["x"].copy(), d["dy"].copy()
    fx = spec.storage.x
    tiny_x = fx.min_normal * 0.37
    fd = spec.storage.dy
    tiny_d = fd.min_normal * 0.37
    c = shape[1]
    for ch in range(c):
        kind = ch % 6
        sl = (slice(None), ch)
        if kind == 0:  # all zero
            x[sl] = 0.0
            dy[sl] = 0.0
        elif kind == 1:  # constant
            x[sl] = 3.0
            dy[sl] = -0.5
        elif kind == 2:  # saturating: beyond every format's range
            x[sl] = rng.choice([-1.0, 1.0], x[sl].shape) * 1e300
            dy[sl] = rng.choice([-1.0, 1.0], dy[sl].shape) * 1e300
        elif kind == 3:  # below the smallest normal
            x[sl] = rng.uniform(-1.0, 1.0, x[sl].shape) * tiny_x
            dy[sl] = rng.uniform(-1.0, 1.0, dy[sl].shape) * tiny_d
        elif kind == 4:  # mixture
            m = rng.integers(0, 4, x[sl].shape)
            x[sl] = np.where(m == 0, 0.0, np.where(m == 1, 1e300 * np.sign(x[sl]),
                             np.where(m == 2, tiny_x, x[sl])))
            dy[sl] = np.where(m == 3, 0.0, dy[sl])
        else:  # one outlier
            x[sl] = rng.standard_normal(x[sl].shape) * 1e-3
            flat = x[sl].reshape(-1)
            flat[rng.integers(0, flat.size)] = 1e4
            x[sl] = flat.reshape(x[sl].shape)
    d["x"], d["dy"] = x, dy
    return d


def prepare_runs(spec: Spec, case: Case, root: Path, stress: float, seed: int,
                 channels_per_run: int | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Golden model, stimulus files and expected patterns of one case (one dir per run).

    A run is one pass over a group of channels that fits the harness memories
    (``channels_per_run`` lowers the group size).
    """
    from . import golden
    from .cocotb_tb.hexio import pack_words
    from .cocotb_tb.scoreboard import PC_FIELDS

    if case.pass_ not in PASSES:
        raise ValueError(f"pass must be one of {', '.join(PASSES)}, got {case.pass_!r}")
    n_, c, h, w = case.shape
    n = n_ * h * w
    lanes = spec.hw.lanes
    b = -(-n // lanes)
    if b > TB_DEPTH_BEATS:
        raise ValueError(f"{n} elements per channel need {b} beats: the co-simulation harness "
                         f"holds {TB_DEPTH_BEATS} per run")
    data = dict(default_data(spec, case.shape, case.seed))
    data.update(case.data or {})
    x = np.asarray(data["x"], np.float64)
    dy = np.asarray(data["dy"], np.float64)
    if x.shape != tuple(case.shape) or dy.shape != tuple(case.shape):
        raise ValueError(f"x and dy must have shape {case.shape}")
    fwd = golden.forward(spec, x, data["gamma"], data["beta"],
                         running_mean=data["running_mean"], running_disp=data["running_disp"])
    bwd = golden.backward(spec, x, dy, data["gamma"], data["beta"], saved=fwd)
    consts = golden.run_constants(spec, n)
    s = spec.scalar
    sbits = {k: int(consts[k]) for k in ("inv_n", "c_k", "eps", "momentum", "unbias")}
    if spec.bn.mode != "range":
        sbits["c_k"] = 0
    run_disp = fwd.running_var if fwd.running_var is not None else fwd.running_sigma
    assert run_disp is not None
    enc = fpnum.encode_array
    # running statistics before the update, as the host rounds them into S (nearest)
    rm_in = fpnum.round_array(np.broadcast_to(np.asarray(data["running_mean"], np.float64), (c,)),
                              s, "nearest")
    rd_in = fpnum.round_array(np.broadcast_to(np.asarray(data["running_disp"], np.float64), (c,)),
                              s, "nearest")
    pc_in = np.stack([fwd.gamma_bits, fwd.beta_bits, enc(rm_in, s), enc(rd_in, s),
                      fwd.mean_bits, fwd.inv_sigma_bits, fwd.scale_bits], axis=1)
    zeros = np.zeros(c, np.uint64)
    pc_fwd = np.stack([fwd.mean_bits, fwd.dispersion_bits, fwd.inv_sigma_bits, fwd.scale_bits,
                       fwd.shift_bits, enc(fwd.running_mean, s), enc(run_disp, s), zeros, zeros],
                      axis=1).astype(np.uint64)
    pc_bwd = np.stack([zeros] * 7 + [bwd.dgamma_bits, bwd.dbeta_bits], axis=1).astype(np.uint64)
    roles = spec.storage.roles()
    xb, xe = _beats(fwd.x_enc, roles["x"], lanes, b)
    dyb, dye = _beats(bwd.dy_enc, roles["dy"], lanes, b)
    per = max(1, min(c, TB_DEPTH_CHANNELS, TB_DEPTH_BEATS // b, channels_per_run or c))
    passes = ["forward", "backward"] if case.pass_ == "both" else [case.pass_]
    inside = (np.arange(b)[:, None] * lanes + np.arange(lanes)[None, :]) < n
    idle = int(round(stress * 65536))
    runs: list[dict[str, Any]] = []
    for p in passes:
        out = "y" if p == "forward" else "dx"
        ofmt = roles[out]
        ob, oe = _beats(fwd.y_enc if p == "forward" else bwd.dx_enc, ofmt, lanes, b)
        for c0 in range(0, c, per):
            c1 = min(c, c0 + per)
            cc = c1 - c0
            d = root / f"{case.name}-{p}-c{c0}"
            d.mkdir(parents=True, exist_ok=True)
            sl = slice(c0 * b, c1 * b)
            (d / "x.hex").write_text(_stream_text(xb[sl], xe[sl], roles["x"], lanes))
            if p == "backward":
                (d / "dy.hex").write_text(_stream_text(dyb[sl], dye[sl], roles["dy"], lanes))
            else:
                (d / "dy.hex").write_text("0\n")
            sw = spec.scalar.width
            (d / "pc.hex").write_text(pack_words([(pc_in[c0:c1, k], sw) for k in range(7)], cc))
            last = np.zeros((cc, b), np.uint64)
            last[:, -1] = 1
            np.savez(d / "expect.npz", bits=ob[sl], exp=oe[sl], last=last.reshape(-1),
                     chan=np.repeat(np.arange(c0, c1), b),
                     elem0=np.tile(np.arange(b) * lanes, cc),
                     inside=np.tile(inside, (cc, 1)),
                     pc=(pc_fwd if p == "forward" else pc_bwd)[c0:c1],
                     pc_check=np.ones(len(PC_FIELDS), bool))
            est = cc * (2 * b + 400) * 8 + 20000
            runs.append({
                "name": f"{case.name}/{p}/c{c0}", "case": case.name, "pass": p, "dir": str(d),
                "mode": int(p == "backward"), "channels": cc, "n": n, "beats": b,
                "lanes": lanes, "consts": sbits, "idle_thr": idle, "bp_thr": idle,
                "seed": (seed * 7919 + len(runs) * 104729 + c0) & 0xFFFFFFFF,
                "timeout_ns": est * 10, "out": out, "ew": ofmt.view.w, "xw": ofmt.view.xw,
                "shared_exp": bool(ofmt.shared_exp_width), "block": ofmt.block,
                "sw": spec.scalar.width,
            })
    meta = {"n": n, "beats": b, "golden_forward": fwd, "golden_backward": bwd}
    return runs, meta


def run_cosim(spec: Spec, runs: list[dict[str, Any]], root: Path, waves: bool = False,
              cflags: str = vlt.TEST_CFLAGS, backend: str = DEFAULT_BACKEND
              ) -> list[dict[str, Any]]:
    """One simulator process for a list of prepared runs; their scoreboard results."""
    from cocotb_tools.runner import get_results, get_runner

    bdir = build_model(spec, waves, cflags, backend)
    vlt.use_tool_env()
    job = root / "job.json"
    job.write_text(json.dumps({"spec": spec.name, "runs": runs}, indent=1))
    runner = get_runner("verilator")
    log = root / "sim.log"
    res_xml = root / "results.xml"
    try:
        runner.test(test_module=COCOTB_MODULE, hdl_toplevel=rtl.TB_TOP, build_dir=bdir,
                    hdl_toplevel_lang="verilog",
                    test_dir=root, extra_env={"LIGHTNORM_COSIM_JOB": str(job)}, waves=waves,
                    log_file=log, results_xml=str(res_xml))
    except (SystemExit, RuntimeError) as e:
        if not (root / "results.json").exists():
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:]) \
                if log.exists() else ""
            raise ToolError(f"co-simulation of {spec.name} failed (log {log}):\n{tail}") from e
    results = json.loads((root / "results.json").read_text())
    if res_xml.exists():
        ntests, nfail = get_results(res_xml)
        if ntests == 0:
            raise ToolError(f"co-simulation of {spec.name} ran no cocotb test (log {log})")
    return results


def compare_many(spec: Spec, cases: Sequence[Case], waves: bool = False, stress: float = 0.25,
                 seed: int = 0, keep: bool = False, channels_per_run: int | None = None,
                 backend: str = DEFAULT_BACKEND) -> list[dict[str, Any]]:
    """Co-simulate several cases in one simulator process; one result dict per case.
    ``backend``: the design under ``lightnorm_top`` (a name of :mod:`lightnorm.backends`)."""
    t0 = time.perf_counter()
    base = model_dir(spec, waves, backend=backend) / "runs"
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    all_runs: list[dict[str, Any]] = []
    for case in cases:
        runs, _ = prepare_runs(spec, case, root, stress, seed, channels_per_run)
        all_runs += runs
    results = run_cosim(spec, all_runs, root, waves, backend=backend)
    by_name = {r["name"]: r for r in results}
    out = []
    failed = False
    for case in cases:
        mine = [r for r in all_runs if r["case"] == case.name]
        res = [by_name.get(r["name"]) for r in mine]
        missing = [r["name"] for r, x in zip(mine, res, strict=True) if x is None]
        got = [x for x in res if x is not None]
        first = [m for x in got for m in x["first_mismatches"]][:10]
        errors = [x["error"] for x in got if "error" in x] + [f"{m}: not run" for m in missing]
        mism = sum(x["mismatches"] for x in got)
        cyc: dict[str, int] = {}
        for r, x in zip(mine, res, strict=True):
            if x is not None:
                cyc[r["pass"]] = cyc.get(r["pass"], 0) + x["cycles"]
        elements = sum(x["elements"] for x in got)
        ok = mism == 0 and not errors and elements > 0
        failed |= not ok
        out.append({
            "spec": spec.name, "pass": case.pass_, "case": case.name, "shape": list(case.shape),
            "elements": elements, "mismatches": mism, "bit_exact": ok,
            "first_mismatches": first, "errors": errors, "cycles": sum(cyc.values()),
            "cycles_by_pass": cyc, "runs": len(mine), "backend": backend,
        })
    wall = time.perf_counter() - t0
    fst = root / "dump.fst"
    for r in out:
        r["seconds"] = wall
        r["waveform"] = str(fst) if (waves and fst.exists() and (failed or keep)) else None
        r["artifacts"] = str(root) if (failed or keep) else None
    if not (failed or keep):
        shutil.rmtree(root, ignore_errors=True)
    for r in out:
        if not r["bit_exact"]:
            print(describe(r), file=sys.stderr)
    return out


def describe(result: dict[str, Any]) -> str:
    """One human line per problem of a comparison result (first mismatches with patterns)."""
    head = (f"{result['spec']} {result['pass']} {result.get('case', '')}: "
            f"{result['elements']} elements compared, {result['mismatches']} mismatches")
    lines = [head]
    for m in result["first_mismatches"]:
        idx = ", ".join(str(i) for i in m["index"])
        lines.append(f"  {m['tensor']}[{idx}]: expected {m['expected']} got {m['got']}")
    lines += [f"  error: {e}" for e in result.get("errors", [])]
    if result.get("waveform"):
        lines.append(f"  waveform: {result['waveform']}")
    if result.get("artifacts"):
        lines.append(f"  run files: {result['artifacts']}")
    return "\n".join(lines)


def default_shape(spec: Spec) -> tuple[int, int, int, int]:
    """A small NCHW shape the spec accepts: 2 x 3 x 1 x n, n about 4 beats."""
    n = min(max(spec.min_channel_elems(), 4 * spec.hw.lanes + 3), spec.hw.max_channel_elems)
    return (1, 3, 1, n)


def compare(spec: Spec, shape: tuple[int, int, int, int] | None = None, seed: int = 0,
            pass_: str = "both", waves: bool = False, data: dict[str, Any] | None = None,
            stress: float = 0.25, backend: str = DEFAULT_BACKEND) -> dict[str, Any]:
    """Co-simulate ``lightnorm_top`` on one data set and compare bit by bit with the golden model.

    Returns ``spec``, ``pass``, ``elements`` (compared tensor elements and per-channel values),
    ``mismatches`` (every differing pattern, including exponents, padding lanes and last flags),
    ``bit_exact``, ``first_mismatches`` (tensor, index, expected and got hex patterns),
    ``cycles`` (clock cycles of the runs), plus ``cycles_by_pass``, ``errors``, ``waveform``
    (the FST file, kept on failure when ``waves``) and ``artifacts`` (run directory, kept on
    failure). ``data`` may override ``x``, ``dy`` (NCHW), ``gamma``, ``beta``,
    ``running_mean``, ``running_disp``; ``stress`` is the probability of an idle cycle on each
    source and of back-pressure on each sink. ``shape`` defaults to :func:`default_shape`;
    ``backend`` selects the design under ``lightnorm_top`` (:func:`lightnorm.backends.
    backend_names`).
    """
    if shape is None:
        shape = default_shape(spec)
    case = Case("case", tuple(int(v) for v in shape), seed, pass_, data)  # type: ignore[arg-type]
    return compare_many(spec, [case], waves=waves, stress=stress, seed=seed,
                        backend=backend)[0]


# ---- the bare Verilator C++ harness of the same model (no cocotb) --------------------------

TB_MAIN = r"""// Bare driver of lightnorm_tb: the same harness as the cocotb test, clocked from C++.
// Each argument after the first is a run directory holding run.txt (mode channels n beats
// inv_n c_k eps momentum unbias idle_thr bp_thr seed max_cycles) and the stimulus files; the
// captured outputs are dumped there, and "finished cycles" is printed per run.
#include <cstdint>
#include <cstdio>
#include <unistd.h>
#include "verilated.h"
#include "Vlightnorm_tb.h"

static Vlightnorm_tb* t;
static void tick() { t->clk = 1; t->eval(); t->clk = 0; t->eval(); }

int main(int argc, char** argv) {
    VerilatedContext ctx;
    t = new Vlightnorm_tb(&ctx);
    t->clk = 0; t->rst = 1; t->load = 0; t->dump = 0; t->go = 0;
    tick(); tick(); tick(); t->rst = 0; tick();
    for (int a = 1; a < argc; ++a) {
        if (chdir(argv[a]) != 0) { std::perror(argv[a]); return 2; }
        std::FILE* f = std::fopen("run.txt", "r");
        if (!f) { std::perror("run.txt"); return 2; }
        unsigned long long v[13];
        for (int i = 0; i < 13; ++i)
            if (std::fscanf(f, "%llu", &v[i]) != 1) {
                std::fprintf(stderr, "bad run.txt\n");
                return 2;
            }
        std::fclose(f);
        t->mode = v[0]; t->channels = v[1]; t->n = v[2]; t->beats = v[3];
        t->inv_n = v[4]; t->c_k = v[5]; t->eps = v[6]; t->momentum = v[7]; t->unbias = v[8];
        t->idle_thr = v[9]; t->bp_thr = v[10]; t->seed = v[11];
        t->load = 1; tick(); t->load = 0;
        t->go = 1; tick(); t->go = 0;
        unsigned long long c = 0;
        while (!t->finished && c < v[12]) { tick(); ++c; }
        int fin = t->finished;
        tick(); t->dump = 1; tick(); t->dump = 0; tick();
        std::printf("%d %llu\n", fin, (unsigned long long)t->cycles);
        std::fflush(stdout);
    }
    t->final();
    delete t;
    return 0;
}
"""


def build_bare(spec: Spec, cflags: str = vlt.TEST_CFLAGS) -> Path:
    """The plain C++ harness of the co-simulation model (same sources and flags, no VPI)."""
    files = model_files(spec)
    return vlt.build_cpp(files, rtl.TB_TOP, TB_MAIN, model_dir(spec, cflags=cflags) / "bare",
                     cflags=cflags)


def write_run_txt(run: dict[str, Any]) -> None:
    c = run["consts"]
    vals = [run["mode"], run["channels"], run["n"], run["beats"], c["inv_n"], c["c_k"], c["eps"],
            c["momentum"], c["unbias"], run["idle_thr"], run["bp_thr"], run["seed"],
            run["timeout_ns"] // 10]
    (Path(run["dir"]) / "run.txt").write_text(" ".join(str(int(v)) for v in vals) + "\n")
