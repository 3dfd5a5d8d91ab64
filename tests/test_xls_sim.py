"""XLS's pipelined Verilog simulated with Verilator (lightnorm.verify.xls_sim) against the XLS JIT.

The JIT of each function is checked against the golden primitives elsewhere
(test_xls_units.py, test_xls_datapath.py); here the scheduled, generated Verilog of every module
of a preset must give the same bits as that JIT on random input patterns (any bits: the
equivalence of two compilations of one function does not depend on the numerics contract),
streamed with idle cycles, and every vector must take exactly the latency ``lightnorm hls``
reports.
"""

from __future__ import annotations

import numpy as np
import pytest

from lightnorm.codegen import dslx_design as xd
from lightnorm.spec import load
from lightnorm.tools import xls as xc
from lightnorm.verify import xls_sim as sim

N = 20_000


@pytest.mark.parametrize("preset", ["lightnorm", "bf16-standard"])
def test_pipelines_match_the_jit_and_their_latency(preset: str) -> None:
    spec = load(preset)
    d = xd.design(spec)
    opts = xc.CodegenOptions(clock_ps=int(spec.hw.clock_ns * 1000))
    fns = d.functions()
    tops = [next(t for t in d.tops if t.fn == fn) for fn in fns]
    pipes = [xc.pipeline(d.dslx, t.fn, t.module, opts) for t in tops]
    harness = sim.PipelineSim(pipes)
    rng = np.random.default_rng(11)
    jobs: list[tuple[int, list[np.ndarray | list[np.ndarray]]]] = []
    inputs = []
    for i, t in enumerate(tops):
        b = t.batch
        block = (b.n_out > 1 and not b.tuple_out) or b.array_in
        n = N // b.n_in if b.n_out > 1 else N
        if b.beat:  # a BFP beat: ef, one array port of L elements, the lane mask
            es, ew, lanes = b.args
            elems = [rng.integers(0, 1 << ew, n, dtype=np.uint64) for _ in range(lanes)]
            ef = rng.integers(0, 1 << es, n, dtype=np.uint64)
            mask = rng.integers(0, 1 << lanes, n, dtype=np.uint64)
            jobs.append((i, [ef, elems, mask]))
            words = [ef, *elems, mask]
        elif block:  # a block encoder: one array port of n_in elements
            words = [rng.integers(0, 1 << b.word, n, dtype=np.uint64) for _ in range(b.n_in)]
            jobs.append((i, [words]))
        else:
            words = [rng.integers(0, 1 << w, n, dtype=np.uint64) for w in b.args]
            assert harness.port_widths(i) == list(b.args), t.module
            jobs.append((i, list(words)))
        inputs.append(words)
    results = harness.run(jobs)
    failures = []
    for t, p, words, res in zip(tops, pipes, inputs, results, strict=True):
        b = t.batch
        exp = xc.batch_jit(d.dslx, b)(*words)
        if b.tuple_out:  # the finalize: a tuple, element 0 in the high bits
            got = np.stack([res.field((b.n_out - 1 - k) * b.wo, b.wo)
                            for k in range(b.n_out)], axis=1)
        elif b.n_out > 1 and not b.array_in:
            st = spec.storage.roles()[t.role.split("_")[0]]
            mw = st.man_bits + 1
            got = np.stack([res.field(b.n_in * mw, st.exp_bits)]
                           + [res.field(k * mw, mw) for k in range(b.n_in)], axis=1)
        else:
            got = res.field(0, b.wo)
        bad = np.nonzero((got != exp).reshape(got.shape[0], -1).any(axis=1))[0]
        if bad.size:
            failures.append(f"{p.module}: {bad.size}/{got.shape[0]} differ from the JIT")
        if not res.latency_min == res.latency_max == p.latency:
            failures.append(f"{p.module}: latency {res.latency_min}..{res.latency_max} "
                            f"cycles, reported {p.latency}")
    assert not failures, "\n".join(failures)
