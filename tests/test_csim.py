"""C-simulation of the generated HLS C++ against the golden model, bit for bit.

Every preset (both passes), >= 30 random valid specs drawn by hypothesis from
``valid_spec_tables()``, and per-spec edge cases: an all-zero channel, a constant channel,
values at (and beyond) the storage maximum, values below the smallest normal, a channel length
that is not a multiple of the block or the lanes, and a channel made of a single block.

Compile cost: one library per spec, cached by content under $LIGHTNORM_CACHE/csim and shared
by xdist workers (file lock); shapes stay small.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hyp_seed

from lightnorm.errors import ToolError
from lightnorm.spec import BFPFormat, FPFormat, Spec, SpecError, from_dict, load, preset_names
from lightnorm.spec.formats import MXFormat
from lightnorm.tools import gxx
from lightnorm.tools.cache import cache_root
from lightnorm.verify import csim

from .strategies import valid_spec_tables

N_RANDOM_SPECS = 30
RANDOM_SEED = 20240611


def assert_exact(res: dict[str, Any]) -> None:
    """A run that compared nothing is a failure; a mismatch shows its bit patterns."""
    assert res["elements"] > 0, "nothing was compared"
    assert res["bit_exact"], (
        f"{res['spec']} ({res['pass']}, shape {res['shape']}, seed {res['seed']}): "
        f"{res['mismatches']} of {res['elements']} words differ; first: "
        + json.dumps(res["first_mismatches"][:5]) + "; per tensor: "
        + json.dumps({k: v for k, v in res["tensors"].items() if v["mismatches"]}))


# ---- presets --------------------------------------------------------------------------------

FORWARD_TENSORS = {"y", "mean", "inv_sigma", "scale", "shift", "running_mean"}
BACKWARD_TENSORS = {"dx", "dgamma", "dbeta"}


#: presets also checked in the centered normalize form (docs/numerics.md section 8)
CENTERED = ("lightnorm", "bf16-standard")


@pytest.mark.parametrize("pass_", ["forward", "backward", "both"])
@pytest.mark.parametrize("name", preset_names())
def test_preset(name: str, pass_: str) -> None:
    res = csim.compare(name, shape=(3, 4, 5, 9), seed=1, pass_=pass_)
    assert_exact(res)
    names = set(res["tensors"])
    if pass_ != "backward":
        assert FORWARD_TENSORS <= names
    if pass_ != "forward":
        assert BACKWARD_TENSORS <= names
    spec = load(name)
    if spec.storage.y.shared_exp_width and pass_ != "backward":
        assert "y_exp" in names
    # every word of every output was compared: y is (C, n padded to whole blocks)
    if pass_ != "backward":
        n = 3 * 5 * 9
        pad = -(-n // spec.storage.y.block) * spec.storage.y.block
        assert res["tensors"]["y"]["elements"] == 4 * pad


@pytest.mark.parametrize("name", CENTERED)
def test_preset_centered(name: str) -> None:
    """The centered normalize form (x - mu) * scale + beta, bit-exact on the presets' formats
    (edge_specs: also its constant channels)."""
    spec = load(name).with_normalize("centered")
    assert_exact(csim.compare(spec, shape=(3, 4, 5, 9), seed=2, pass_="both"))


@pytest.mark.parametrize("name", ["lightnorm", "lightnorm-aggressive"])
def test_preset_many_chunks_and_blocks(name: str) -> None:
    """A larger channel: many beats per chunk, many blocks, several seeds."""
    for seed in (2, 3):
        assert_exact(csim.compare(name, shape=(4, 3, 16, 17), seed=seed))


# ---- random specs (hypothesis) ---------------------------------------------------------------


def draw_spec_tables(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` distinct valid spec tables drawn by hypothesis, the same in every process
    (collection happens in each xdist worker, so the draw must be deterministic).

    One short hypothesis run per table, each with its own seed, keeping its last example:
    a single long run would mutate a few examples into clusters of near-duplicates, and the
    first example of a run is the simplest one.
    """
    tables: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempt = 0
    while len(tables) < count:
        last = _last_example(seed + attempt)
        attempt += 1
        key = json.dumps(last, sort_keys=True)
        if key not in seen:
            seen.add(key)
            tables.append(last)
    return tables


def _last_example(seed: int) -> dict[str, Any]:
    drawn: list[dict[str, Any]] = []

    @hyp_seed(seed)
    @settings(max_examples=4, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(valid_spec_tables())
    def collect(table: dict[str, Any]) -> None:
        drawn.append(table)

    collect()
    return drawn[-1]


RANDOM_TABLES = draw_spec_tables(N_RANDOM_SPECS, RANDOM_SEED)


def small_shape(spec: Spec, salt: str = "") -> tuple[int, int, int, int]:
    """A small NCHW shape with n in range, usually a ragged last beat and block."""
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    rng = np.random.default_rng(int(hashlib.sha256((spec.hash + salt).encode()).hexdigest()[:8],
                                    16))
    n = int(rng.integers(lo, min(hi, lo + 3 * spec.hw.lanes + 40) + 1))
    return (2, 2, 1, n // 2) if n % 2 == 0 else (1, 2, 1, n)


def table_id(table: dict[str, Any]) -> str:
    sp = from_dict(table)
    return f"{sp.bn.mode}-L{sp.hw.lanes}-K{sp.bn.chunks}-{sp.hash[:8]}"


@pytest.mark.parametrize("table", RANDOM_TABLES, ids=[table_id(t) for t in RANDOM_TABLES])
def test_random_spec(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    res = csim.compare(spec, shape=small_shape(spec), seed=7)
    assert_exact(res)


def test_random_specs_are_varied() -> None:
    """The draw covers both modes, FP, BFP and MX storage, both rounding modes, many lane
    counts, and both forms of the backward pass 1 (docs/numerics.md section 9)."""
    specs = [from_dict(t) for t in RANDOM_TABLES]
    assert {s.exact_dot for s in specs} == {True, False}
    assert len({s.hash for s in specs}) == N_RANDOM_SPECS
    assert {s.bn.mode for s in specs} == {"standard", "range"}
    kinds = {f.kind for s in specs for f in s.storage.roles().values()}
    assert kinds == {"fp", "bfp", "mx"}
    assert {s.compute.rounding for s in specs} == {"nearest", "truncate"}
    assert {s.bn.normalize for s in specs} == {"affine", "centered"}
    assert len({s.hw.lanes for s in specs}) >= 3


# ---- edge cases --------------------------------------------------------------------------------

EDGE_TABLES: dict[str, dict[str, Any]] = {
    # range BN, K = 1, 4 lanes, 64-element blocks: a channel can be one (short) block
    "edge-bfp-k1": {
        "name": "edge-bfp-k1",
        "bn": {"mode": "range", "chunks": 1, "eps": 1e-3},
        "hw": {"lanes": 4, "max_channel_elems": 4096},
        "storage": {
            "x": {"kind": "bfp", "block": 64, "man_bits": 4, "exp_bits": 5,
                  "rounding": "truncate", "carry": "raise"},
            "y": {"kind": "bfp", "block": 8, "man_bits": 3, "exp_bits": 4,
                  "carry": "raise"},
            "dy": {"kind": "fp", "exp_bits": 5, "man_bits": 2},
            "dx": {"kind": "bfp", "block": 4, "man_bits": 6, "exp_bits": 3},
        },
        "compute": {"exp_bits": 5, "man_bits": 4},
        "accum": {"exp_bits": 6, "man_bits": 8, "rounding": "truncate"},
        "scalar": {"exp_bits": 8, "man_bits": 10},
    },
    # standard BN, 2 lanes, narrow BFP exponents (clamping at both ends), truncating lanes
    "edge-std-narrow": {
        "name": "edge-std-narrow",
        "bn": {"mode": "standard", "eps": 1e-2},
        "hw": {"lanes": 2, "max_channel_elems": 1000},
        "storage": {
            "x": {"kind": "bfp", "block": 8, "man_bits": 7, "exp_bits": 4},
            "y": {"kind": "fp", "exp_bits": 4, "man_bits": 3},
            "dy": {"kind": "bfp", "block": 16, "man_bits": 3, "exp_bits": 3,
                   "rounding": "truncate", "carry": "raise"},
            "dx": {"kind": "fp", "exp_bits": 5, "man_bits": 2, "rounding": "truncate"},
        },
        "compute": {"exp_bits": 4, "man_bits": 5, "rounding": "truncate"},
        "accum": {"exp_bits": 5, "man_bits": 10},
        "scalar": {"exp_bits": 6, "man_bits": 12},
    },
}


def edge_specs() -> list[Spec]:
    return ([load(n) for n in preset_names()] + [from_dict(t) for t in EDGE_TABLES.values()]
            + [load(n).with_normalize("centered") for n in CENTERED])


def storage_limits(fmt: FPFormat | BFPFormat | MXFormat) -> tuple[float, float]:
    """(largest finite value, a magnitude below the smallest normal (FP: flushed) / the finest
    block grid (BFP, MX))."""
    if isinstance(fmt, FPFormat):
        return fmt.max_value, fmt.min_normal
    return fmt.max_value, 2.0 ** fmt.lsb_exp


def edge_data(spec: Spec, shape: tuple[int, int, int, int], seed: int) -> dict[str, Any]:
    """Channels: 0 all zero, 1 constant, 2 at/beyond the storage max, 3 below the smallest
    normal, 4 a mix of huge, tiny and ordinary values; the rest random."""
    rng = np.random.default_rng(seed)
    nn, c, h, w = shape
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape) * 0.1
    xmax, xtiny = storage_limits(spec.storage.x)
    dmax, dtiny = storage_limits(spec.storage.dy)

    def big(mx: float, size: tuple[int, ...]) -> np.ndarray:
        beyond = mx * 1.5 if np.isfinite(mx * 1.5) else mx
        vals = rng.choice([mx, -mx, beyond, -beyond, 0.75 * mx], size=size)
        return vals.astype(np.float64)

    sub = (nn, h, w)
    x[:, 0] = 0.0
    x[:, 1] = 0.75
    x[:, 2] = big(xmax, sub)
    x[:, 3] = xtiny * rng.uniform(0.05, 0.999, sub) * rng.choice([-1.0, 1.0], sub)
    mix = rng.random(sub)
    x[:, 4] = np.where(mix < 0.2, big(xmax, sub), np.where(mix < 0.5, x[:, 3], x[:, 4]))
    dy[:, 2] = big(dmax, sub)
    dy[:, 3] = dtiny * rng.uniform(0.05, 0.999, sub)
    dy[:, 0] = 0.0
    return {"x": x, "dy": dy, "gamma": rng.uniform(0.25, 2.0, c),
            "beta": rng.uniform(-1.0, 1.0, c)}


def ragged_n(spec: Spec) -> int:
    """A channel length >= min_channel_elems that is a multiple of no block (BFP, MX) nor of the
    lanes (when the lanes allow)."""
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    blocks = [f.block for f in spec.storage.roles().values() if f.kind != "fp"]
    for n in range(lo, min(hi, lo + 4096) + 1):
        if all(n % b for b in blocks if b > 1) and (spec.hw.lanes == 1 or n % spec.hw.lanes):
            return n
    return lo


def single_block_n(spec: Spec) -> list[int]:
    """Channel lengths that make one (full or short) block of a BFP or MX tensor, if the spec
    allows them."""
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    out = set()
    for f in spec.storage.roles().values():
        if f.kind != "fp":  # a block format
            for n in (f.block, f.block - 1 - (f.block > 4) * 2):
                if lo <= n <= hi:
                    out.add(n)
    return sorted(out)


EDGE_CASES = [(s, "ragged") for s in edge_specs()] + [
    (s, f"single-block-{n}") for s in edge_specs() for n in single_block_n(s)]


EDGE_IDS = [f"{s.name}{'-centered' if s.bn.normalize == 'centered' else ''}-{c}"
            for s, c in EDGE_CASES]


@pytest.mark.parametrize("spec,case", EDGE_CASES, ids=EDGE_IDS)
def test_edge_cases(spec: Spec, case: str) -> None:
    n = ragged_n(spec) if case == "ragged" else int(case.rsplit("-", 1)[1])
    shape = (1, 6, 1, n)
    for seed in (0, 1):
        res = csim.compare(spec, shape=shape, seed=seed, data=edge_data(spec, shape, seed))
        assert_exact(res)


def test_edge_cases_cover_single_blocks() -> None:
    """Somewhere a channel is exactly one block and shorter than one block."""
    cases = {c for _, c in EDGE_CASES}
    assert any(c.startswith("single-block") for c in cases)
    spec = from_dict(EDGE_TABLES["edge-bfp-k1"])
    assert 64 in single_block_n(spec) and any(n < 64 for n in single_block_n(spec))


def test_edge_data_saturates_and_flushes() -> None:
    """The edge data really hits the storage limits (checked on the golden encoding)."""
    from lightnorm.verify import golden

    spec = load("fp32-baseline")
    shape = (1, 6, 1, 50)
    d = edge_data(spec, shape, 0)
    fw = golden.forward(spec, d["x"], d["gamma"], d["beta"])
    xs = fw.x_enc.vals
    assert np.all(xs[0] == 0) and np.all(xs[1] == 0.75)
    assert np.max(np.abs(xs[2])) == spec.storage.x.max_value
    assert np.count_nonzero(xs[3]) < xs.shape[1]  # some values flushed to zero


# ---- API behaviour -------------------------------------------------------------------------


def test_compare_result_keys() -> None:
    res = csim.compare("lightnorm", shape=(1, 2, 8, 16), seed=3, pass_="forward")
    for key in ("spec", "pass", "elements", "mismatches", "bit_exact", "first_mismatches"):
        assert key in res
    assert res["spec"] == "lightnorm" and res["pass"] == "forward"
    assert res["shape"] == [1, 2, 8, 16]
    json.dumps(res)  # plain data, ready for --json


def test_mismatch_is_reported_with_bit_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = csim.Design.forward

    def corrupt(self: csim.Design, *args: Any, **kw: Any) -> dict[str, np.ndarray]:
        out = real(self, *args, **kw)
        out["y"][1, 5] ^= np.uint64(1)
        out["mean"][0] ^= np.uint64(4)
        return out

    monkeypatch.setattr(csim.Design, "forward", corrupt)
    res = csim.compare("bf16-standard", shape=(1, 2, 4, 10), seed=0, pass_="forward")
    assert not res["bit_exact"]
    assert res["mismatches"] == 2
    first = {m["tensor"]: m for m in res["first_mismatches"]}
    assert first["y"]["index"] == [1, 5]
    assert int(first["y"]["expected"], 16) ^ int(first["y"]["got"], 16) == 1
    assert first["mean"]["expected"].startswith("0x")


def test_given_data_is_used() -> None:
    x = np.linspace(-3.0, 3.0, 2 * 3 * 4 * 20).reshape(2, 3, 4, 20)
    res = csim.compare("lightnorm", data={"x": x, "dy": np.ones_like(x), "gamma": 2.0,
                                          "beta": 0.5})
    assert res["shape"] == [2, 3, 4, 20]
    assert_exact(res)


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match="pass_"):
        csim.compare("lightnorm", pass_="sideways")
    with pytest.raises(SpecError, match="N\\*H\\*W"):
        csim.compare("lightnorm", shape=(1, 2, 2, 2))  # n = 4 < 113
    with pytest.raises(ValueError, match="unknown data"):
        csim.compare("lightnorm", data={"z": 1.0})


def test_missing_hls4ml_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "hls4ml" else real(name, *a))
    with pytest.raises(ToolError, match="hls4ml"):
        gxx.ap_types_dir()


def test_library_is_cached_by_content() -> None:
    spec = load("lightnorm")
    first = csim.build(spec)
    assert csim.build(spec) == first
    assert first.parent.parent == cache_root("csim")
    assert first.name.startswith(f"lib{spec.ident}-") and first.suffix == ".so"
    other = csim.build(load("fp32-baseline"))
    assert other != first
    assert csim.design(spec).lib.ln_spec_hash().decode() == spec.hash


def test_benchmark_runs() -> None:
    res = csim.benchmark("lightnorm", shape=(2, 2, 8, 8), repeat=1)
    for p in ("forward", "backward"):
        assert res[p]["csim_elements_per_s"] > 0 and res[p]["golden_elements_per_s"] > 0
        assert res[p]["csim_over_golden"] > 0
