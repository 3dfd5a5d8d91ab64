"""Switching activity of the generated RTL from a real simulation (docs/synthesis.md).

:func:`simulate` builds ``lightnorm_tb`` (the co-simulation harness around ``lightnorm_top``)
with Verilator ``--trace`` and the C++ driver of :mod:`.harness`, streams one forward and one
backward run of representative data through it (x ~ N(0, 1), dy ~ N(0, 0.01^2), the stimulus
files and constants made by :func:`lightnorm.verify.cosim.prepare_runs`), writes one VCD per
run and counts, per bit of every traced signal of ``lightnorm_top`` (every signal, or those a
netlist can match: :mod:`.tracing`), the toggles and the cycles it was high (:mod:`.vcd`).
:func:`sources_for` turns those into (activity, duty) of the flat netlist's flip-flop outputs
and input ports, matched by name (:func:`match_net`); :mod:`.netlist` propagates them through
the combinational cells.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightnorm.cost.activity.harness import HARNESS_CPP
from lightnorm.cost.activity.tracing import trace_control, without_index
from lightnorm.cost.activity.vcd import VcdActivity, read_vcd
from lightnorm.errors import ToolError
from lightnorm.spec import Spec, check_channel_elems
from lightnorm.tools import verilator as vlt
from lightnorm.tools.cache import cache_root
from lightnorm.tools.locks import file_lock

#: bump when the harness, the stimulus or the counting changes (invalidates cached activity)
ACTIVITY_VERSION = "1"
PASSES = ("forward", "backward")
#: the C++ compiler's optimization of the activity model (the counts do not depend on it)
ACTIVITY_CFLAGS = "-O0"
#: Verilator traces an unpacked array only up to this many elements (its default, 32, left the
#: flip-flops of an encoder's memory of 64 beats - a 1-lane design with MX storage - to the
#: fallback activity); no design synthesizes a memory of flip-flops this deep
TRACE_MAX_ARRAY = 1 << 20
VERILATOR_OPT = ["-O3", "--trace", "--trace-max-array", str(TRACE_MAX_ARRAY),
                 "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                 "-Wno-fatal", "-Wno-lint", "-Wno-style"]


@dataclass(frozen=True)
class ActivityConfig:
    """The simulated workload: one forward and one backward run of one NCHW tensor.

    ``shape`` None: 2 channels of ``n = 256 * lanes`` elements (within the spec's limits), as
    ``(1, 2, 1, n)`` - long enough that the per-channel finalize is a small part of a pass.
    """

    shape: tuple[int, int, int, int] | None = None
    seed: int = 0
    x_std: float = 1.0
    dy_std: float = 0.01

    def resolve(self, spec: Spec) -> ActivityConfig:
        if self.shape is not None:
            return ActivityConfig(tuple(int(v) for v in self.shape), self.seed,  # type: ignore[arg-type]
                                  self.x_std, self.dy_std)
        n = max(spec.min_channel_elems(), min(spec.hw.max_channel_elems, 256 * spec.hw.lanes))
        return ActivityConfig((1, 2, 1, n), self.seed, self.x_std, self.dy_std)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape) if self.shape is not None else None
        return d


@dataclass(frozen=True)
class PassActivity:
    """What one pass's simulation measured."""

    #: clock cycles the design was busy (the harness's counter), summed over the runs
    cycles: int
    #: cycles covered by the VCDs (from the cycle after ``go`` to ``finished``)
    window: int
    #: tensor elements the pass produced (channels x n)
    elements: int
    #: signal (relative to lightnorm_top) -> (msb, lsb, toggles per bit, high cycles per bit),
    #: per-bit lists indexed by bit - min(msb, lsb)
    signals: dict[str, tuple[int, int, list[int], list[int]]]

    def lookup(self, name: str, bit: int | None) -> tuple[float, float] | None:
        """(activity per cycle, duty) of one bit, or None when the signal or bit is unknown."""
        sig = self.signals.get(name)
        if sig is None:
            return None
        msb, lsb, tog, high = sig
        lo, hi = min(msb, lsb), max(msb, lsb)
        width = hi - lo + 1
        if bit is None:
            if width != 1:
                return None
            i = 0
        elif lo <= bit <= hi:
            i = bit - lo
        else:
            return None
        return tog[i] / self.window, high[i] / self.window


@dataclass(frozen=True)
class SimulatedActivity:
    config: ActivityConfig
    passes: dict[str, PassActivity]
    verilator: str | None
    build_seconds: float
    sim_seconds: float


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()


def _pow2(n: int) -> int:
    return 1 << max(1, (max(1, n) - 1).bit_length())


def _merge(acc: dict[str, tuple[int, int, np.ndarray, np.ndarray]], vcd: VcdActivity) -> None:
    for name, s in vcd.signals.items():
        if name in acc:
            msb, lsb, t, h = acc[name]
            acc[name] = (msb, lsb, t + s.toggles, h + s.high)
        else:
            acc[name] = (s.msb, s.lsb, s.toggles.copy(), s.high.copy())


def simulate(spec: Spec, config: ActivityConfig | None = None, cache: Path | None = None,
             use_cache: bool = True, design: dict[str, str] | None = None,
             trace: Iterable[str] | None = None) -> SimulatedActivity:
    """Simulate one forward and one backward run; toggle counts of the DUT's signals.

    ``design``: the files under ``lightnorm_top`` (default: the template RTL of ``spec``; the
    XLS backend passes its own design, so its activity and cycle counts are its own).
    ``trace``: the variables whose counts are wanted (paths below ``lightnorm_top``, as
    :func:`traced_variables` gives them for a netlist's nets); only the declarations that may
    hold them are traced (:mod:`.tracing`), the others may be missing from the result.
    Default: every signal.
    Cached under ``cache/activity`` by the design and harness sources, what is traced, the
    Verilator version and the workload (``config``).
    """
    from lightnorm.codegen import rtl
    from lightnorm.verify import cosim

    cfg = (config or ActivityConfig()).resolve(spec)
    root = (cache or cache_root("synth")) / "activity"
    n_, c, h, w = cfg.shape  # type: ignore[misc]
    n = n_ * h * w
    check_channel_elems(spec, n)
    lanes = spec.hw.lanes
    beats = -(-n // lanes)
    per = max(1, min(c, cosim.TB_DEPTH_CHANNELS, cosim.TB_DEPTH_BEATS // beats))
    depth_beats = _pow2(per * beats)
    depth_ch = _pow2(per)
    files = {**(rtl.render_rtl(spec) if design is None else design),
             **rtl.render_tb(spec, depth_beats, depth_ch)}
    control = None if trace is None else trace_control(files, rtl.TOP, trace)
    build_key = _digest(*(f"{k}\0{v}" for k, v in sorted(files.items())), HARNESS_CPP,
                        " ".join(VERILATOR_OPT), str(vlt.verilator_version()),
                        *([control] if control is not None else []))[:24]
    run_key = _digest(build_key, json.dumps(cfg.to_dict(), sort_keys=True),
                      ACTIVITY_VERSION)[:24]
    out_dir = root / f"run-{run_key}"
    with file_lock(root / f"run-{run_key}.lock"):
        result_file = out_dir / "activity.json"
        if use_cache and result_file.is_file():
            return _load(result_file)
        return _simulate(spec, cfg, files, root, build_key, out_dir, control)


def workload_data(cfg: ActivityConfig) -> dict[str, np.ndarray]:
    """The simulated tensors x and dy (NCHW of ``cfg.shape``, a resolved config), drawn from
    ``cfg.seed``: what the activity simulation streams through the design, and what the cost
    estimate measures the data's toggle rates on."""
    if cfg.shape is None:
        raise ValueError("workload_data needs a resolved ActivityConfig (a shape)")
    rng = np.random.default_rng(cfg.seed)
    return {"x": cfg.x_std * rng.standard_normal(cfg.shape),
            "dy": cfg.dy_std * rng.standard_normal(cfg.shape)}


def _simulate(spec: Spec, cfg: ActivityConfig, files: dict[str, str], root: Path,
              build_key: str, out_dir: Path, control: str | None) -> SimulatedActivity:
    import time

    from lightnorm.codegen import rtl
    from lightnorm.verify import cosim

    result_file = out_dir / "activity.json"

    t0 = time.perf_counter()
    # -O0: fp32-baseline's model compiles in 20 s instead of 32 s at -O1 and simulates in 10 s
    # instead of 9 s (same counts); the models are built once and run once
    exe = vlt.build_cpp(files, rtl.TB_TOP, HARNESS_CPP, root / f"build-{build_key}",
                        opt=VERILATOR_OPT, cflags=ACTIVITY_CFLAGS, control=control)
    t1 = time.perf_counter()

    shape = tuple(cfg.shape)  # type: ignore[arg-type]
    data = workload_data(cfg)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work = out_dir / "work"
    work.mkdir(parents=True)
    case = cosim.Case("act", shape, cfg.seed, "both", data)  # type: ignore[arg-type]
    runs, _meta = cosim.prepare_runs(spec, case, work, 0.0, cfg.seed)
    lines = []
    for i, r in enumerate(runs):
        k = r["consts"]
        max_cycles = r["channels"] * (2 * r["beats"] + 2000) * 4 + 100000
        lines.append(" ".join(str(v) for v in (
            r["dir"], r["mode"], r["channels"], r["n"], r["beats"], k["inv_n"], k["c_k"],
            k["eps"], k["momentum"], k["unbias"], max_cycles, str(work / f"run{i}.vcd"))))
        if " " in r["dir"] or " " in str(work):
            raise ToolError(f"activity simulation: the cache path {work} contains a space")
    job = work / "job.txt"
    job.write_text("\n".join(lines) + "\n")
    log = work / "sim.log"
    vlt.run([str(exe), str(job)], work, log, f"activity simulation of {spec.name}")
    got = {}
    for line in log.read_text().splitlines():
        m = re.match(r"run (\d+) cycles (\d+) window (\d+) finished (\d)", line)
        if m:
            got[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), m.group(4) == "1")
    passes: dict[str, PassActivity] = {}
    for p in PASSES:
        acc: dict[str, tuple[int, int, np.ndarray, np.ndarray]] = {}
        cycles = window = elements = 0
        for i, r in enumerate(runs):
            if r["pass"] != p:
                continue
            if i not in got or not got[i][2]:
                raise ToolError(f"activity simulation of {spec.name}: run {r['name']} did not "
                                f"finish (log {log})")
            cyc, win, _ = got[i]
            vcd_path = work / f"run{i}.vcd"
            vcd = read_vcd(vcd_path, cycles=win)
            _merge(acc, vcd)
            vcd_path.unlink()
            cycles += cyc
            window += win
            elements += r["channels"] * r["n"]
        if window == 0:
            raise ToolError(f"activity simulation of {spec.name}: no {p} run")
        passes[p] = PassActivity(cycles, window, elements, {
            k: (v[0], v[1], [int(x) for x in v[2]], [int(x) for x in v[3]])
            for k, v in acc.items()})
    t2 = time.perf_counter()
    res = SimulatedActivity(cfg, passes, vlt.verilator_version(), t1 - t0, t2 - t1)
    _save(result_file, res)
    shutil.rmtree(work, ignore_errors=True)
    return res


def _save(path: Path, res: SimulatedActivity) -> None:
    data = {
        "config": res.config.to_dict(),
        "verilator": res.verilator,
        "build_seconds": res.build_seconds,
        "sim_seconds": res.sim_seconds,
        "passes": {p: {"cycles": a.cycles, "window": a.window, "elements": a.elements,
                       "signals": {k: list(v) for k, v in a.signals.items()}}
                   for p, a in res.passes.items()},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(path)


def _load(path: Path) -> SimulatedActivity:
    data = json.loads(path.read_text())
    cfg = data["config"]
    config = ActivityConfig(tuple(cfg["shape"]), cfg["seed"], cfg["x_std"],  # type: ignore[arg-type]
                            cfg["dy_std"])
    passes = {p: PassActivity(a["cycles"], a["window"], a["elements"],
                              {k: (v[0], v[1], v[2], v[3]) for k, v in a["signals"].items()})
              for p, a in data["passes"].items()}
    return SimulatedActivity(config, passes, data.get("verilator"), data["build_seconds"],
                             data["sim_seconds"])


# ---- netlist names -> simulated signals ------------------------------------------------------
_SPLIT = re.compile(r"^(.*)_(\d+)_$")


def match_net(activity: PassActivity, net: str) -> tuple[float, float] | None:
    """(activity, duty) of a flat-netlist net named after an RTL signal bit, or None.

    Yosys keeps RTL names through ``flatten`` (``u_fwd.u_enc.mem[1]``, instance paths joined
    with '.') and ``splitnets -format __`` appends ``_<bit>_`` to each bit of a vector
    (``u_fwd.acc_q_3_``); one-bit signals keep their name.
    """
    m = _SPLIT.match(net)
    if m:
        v = activity.lookup(m.group(1), int(m.group(2)))
        if v is not None:
            return v
    return activity.lookup(net, None)


def traced_variables(nets: Iterable[str]) -> list[str]:
    """The RTL variables (paths below ``lightnorm_top``) :func:`match_net` may look up for
    ``nets``: per net its name without the ``_<bit>_`` suffix and the name itself, without a
    trailing element index (``u_enc.mem[1]_3_`` -> ``u_enc.mem``: an array is one variable).
    Names whose last part starts with ``_`` (Yosys's own nets) are left out: Verilator does
    not trace such names."""
    out: set[str] = set()
    for net in nets:
        m = _SPLIT.match(net)
        for name in ((m.group(1), net) if m else (net,)):
            name = without_index(name)
            if name and not name.rsplit(".", 1)[-1].startswith("_"):
                out.add(name)
    return sorted(out)


def sources_for(activity: PassActivity, nets: Mapping[str, None] | list[str]
                ) -> dict[str, tuple[float, float]]:
    """Simulated (activity, duty) of those ``nets`` whose names match a simulated signal bit."""
    out: dict[str, tuple[float, float]] = {}
    for net in nets:
        v = match_net(activity, net)
        if v is not None:
            out[net] = v
    return out


__all__ = ["ActivityConfig", "PassActivity", "SimulatedActivity", "match_net", "simulate",
           "sources_for", "traced_variables"]
