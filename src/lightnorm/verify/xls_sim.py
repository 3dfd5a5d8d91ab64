"""Simulate XLS's pipelined Verilog with Verilator: outputs and the latency, vector by vector.

The JIT checks a function; this checks the scheduled, generated RTL of it: several pipelines
(:class:`lightnorm.tools.xls.Pipeline`) behind one harness (``xls_sim_top``: a selector, the
input ports side by side in one wide ``din``, the output zero-extended in ``dout``) and a C++
driver that streams each job's vectors with idle cycles in between (``in_valid`` from an
LFSR), collects the results on ``out_valid`` and measures the clock edges each vector took.
One Verilator build per set of pipelines, cached by content (``lightnorm.verify.cosim``).

Port layout follows XLS: scalar parameters are separate ports in declaration order; an array
parameter is one port with element 0 in the low bits; a tuple result has element 0 in the
high bits (an array inside it again element 0 low).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightnorm.codegen.dslx import render_template
from lightnorm.tools import verilator as vlt
from lightnorm.tools.cache import cache_root
from lightnorm.tools.xls import Pipeline, Port, ports

SIM_TOP = "xls_sim_top"


@dataclass(frozen=True)
class _Unit:
    i: int
    module: str
    ports: list[Port]
    wo: int


def _words(bits: int) -> int:
    return -(-bits // 32)


def put_field(words: np.ndarray, pos: int, width: int, value: np.ndarray) -> None:
    """OR a ``width``-bit field (uint64 values, width <= 64) into rows of uint32 words."""
    v = np.asarray(value, np.uint64).reshape(-1)
    if width < 64:
        v = v & np.uint64((1 << width) - 1)
    done = 0
    while done < width:
        bit = pos + done
        k, sh = divmod(bit, 32)
        take = min(32 - sh, width - done)
        chunk = (v >> np.uint64(done)) & np.uint64((1 << take) - 1)
        words[:, k] |= (chunk << np.uint64(sh)).astype(np.uint32)
        done += take


def get_field(words: np.ndarray, pos: int, width: int) -> np.ndarray:
    """A ``width``-bit field (<= 64) of rows of uint32 words, as uint64."""
    out = np.zeros(words.shape[0], np.uint64)
    done = 0
    while done < width:
        bit = pos + done
        k, sh = divmod(bit, 32)
        take = min(32 - sh, width - done)
        chunk = (words[:, k].astype(np.uint64) >> np.uint64(sh)) & np.uint64((1 << take) - 1)
        out |= chunk << np.uint64(done)
        done += take
    return out


@dataclass
class SimResult:
    out: np.ndarray  # (n, output words) uint32, the output port of each vector in order
    latency_min: int
    latency_max: int

    def field(self, pos: int, width: int) -> np.ndarray:
        return get_field(self.out, pos, width)


class PipelineSim:
    """A Verilator model of several XLS pipelines; ``run`` streams vectors through them."""

    def __init__(self, pipelines: list[Pipeline], build_dir: Path | None = None) -> None:
        if not 0 < len(pipelines) <= 255:
            raise ValueError("between 1 and 255 pipelines per harness")
        self.pipelines = pipelines
        self.units: list[_Unit] = []
        dw = ow = 0
        for i, p in enumerate(pipelines):
            ins, wo = ports(p.verilog, p.module)
            off = 0
            placed = []
            for q in ins:
                placed.append(Port(q.name, q.width, off))
                off += q.width
            self.units.append(_Unit(i, p.module, placed, wo))
            dw, ow = max(dw, off), max(ow, wo)
        self.dw, self.ow = max(dw, 65), max(ow, 65)  # always VlWide in the C++ model
        self.dww, self.oww = _words(self.dw), _words(self.ow)
        ctx = {"top": SIM_TOP, "units": self.units, "dw": self.dw, "ow": self.ow,
               "dww": self.dww, "oww": self.oww}
        files = {f"{p.module}.v": p.verilog for p in pipelines}
        files[f"{SIM_TOP}.v"] = render_template("sim/sim_top.v.j2", ctx)
        main = render_template("sim/sim_main.cpp.j2", ctx)
        h = hashlib.sha256()
        for name, text in sorted({**files, "main.cpp": main}.items()):
            h.update(name.encode() + b"\0" + text.encode() + b"\0")
        key = h.hexdigest()[:16]
        d = build_dir or cache_root("xls") / f"sim-{key}"
        self.exe = vlt.build_cpp(files, SIM_TOP, main, d, cflags="-O1")

    def port_widths(self, index: int) -> list[int]:
        return [p.width for p in self.units[index].ports]

    def run(self, jobs: list[tuple[int, list[np.ndarray | list[np.ndarray]]]], seed: int = 1
            ) -> list[SimResult]:
        """Jobs: (pipeline index, one uint64 array per input port - or, for an array port,
        a list of element arrays, element 0 low). Returns each job's outputs and latencies."""
        parts: list[np.ndarray] = []
        sizes = []
        for j, (idx, values) in enumerate(jobs):
            u = self.units[idx]
            if len(values) != len(u.ports):
                raise ValueError(f"{u.module}: {len(u.ports)} ports, {len(values)} given")
            cols: list[tuple[Port, list[np.ndarray]]] = []
            n = -1
            for port, val in zip(u.ports, values, strict=True):
                elems = list(val) if isinstance(val, (list, tuple)) else [val]
                for e in elems:
                    n = e.size if n < 0 else n
                    if e.size != n:
                        raise ValueError(f"{u.module}: input arrays differ in length")
                cols.append((port, elems))
            words = np.zeros((n, self.dww), np.uint32)
            for port, elems in cols:
                ew = port.width // len(elems)
                if ew * len(elems) != port.width or ew > 64:
                    raise ValueError(f"{u.module}.{port.name}: {len(elems)} element(s) do "
                                     f"not split {port.width} bits")
                for k, e in enumerate(elems):
                    put_field(words, port.off + k * ew, ew, e)
            head = np.array([idx, n, (seed * 2654435761 + j) & 0xFFFFFFFF], np.uint32)
            parts += [head, words.reshape(-1)]
            sizes.append(n)
        with tempfile.TemporaryDirectory(prefix="ln_xls_sim_") as tmp:
            fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            np.concatenate(parts).astype(np.uint32).tofile(fin)
            vlt.run([str(self.exe), str(fin), str(fout)], Path(tmp), Path(tmp) / "run.log",
                    "XLS pipeline simulation")
            raw = np.fromfile(fout, np.uint32)
        out, pos = [], 0
        for n in sizes:
            lat = raw[pos:pos + 2].view(np.int32)
            pos += 2
            words = raw[pos:pos + n * self.oww].reshape(n, self.oww)
            pos += n * self.oww
            out.append(SimResult(words, int(lat[0]), int(lat[1])))
        return out


__all__ = ["PipelineSim", "SIM_TOP", "SimResult", "get_field", "put_field"]
