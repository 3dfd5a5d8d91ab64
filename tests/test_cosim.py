"""Co-simulation of lightnorm_top (Verilator + cocotb), bit-exact against the golden model.

Every preset forward and backward on random data and on the degenerate inputs of
docs/numerics.md section 10 (all-zero, constant, saturating and below-normal channels, n not a
multiple of the lanes or blocks), random valid specs, and the reporting of a mismatch (first
element with its bit patterns, FST waveform kept). Each spec is built once (cached by hash);
all cases of one spec run in one simulator process, with random idle cycles on the sources and
random back-pressure on the sinks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from lightnorm.codegen import rtl
from lightnorm.spec import (
    Spec,
    from_dict,
    load,
    preset_names,
)
from lightnorm.tools import verilator as vlt
from lightnorm.verify import cosim, golden

from .strategies import small_spec_tables

PRESETS = preset_names()


def _shape(spec: Spec, n_target: int, channels: int = 3) -> tuple[int, int, int, int]:
    n = min(max(spec.min_channel_elems(), n_target), spec.hw.max_channel_elems)
    return (1, channels, 1, n)


def _cases(spec: Spec, seed: int) -> list[cosim.Case]:
    lanes = spec.hw.lanes
    es = cosim.edge_shape(spec)
    rand_n = max(spec.min_channel_elems(), 4 * lanes)
    rand_shape = _shape(spec, rand_n)
    if rand_shape[3] % 2 == 0:
        rand_shape = (2, rand_shape[1], 1, rand_shape[3] // 2)
    return [
        cosim.Case("random", rand_shape, seed, "both"),
        cosim.Case("edge", es, seed + 1, "both", cosim.edge_data(spec, es, seed + 1)),
    ]


def _assert_exact(results: list[dict[str, Any]]) -> None:
    for r in results:
        assert r["elements"] > 0, r
        assert r["bit_exact"], cosim.describe(r)
        assert set(r["cycles_by_pass"]) == {"forward", "backward"}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_forward_backward_bit_exact(preset: str) -> None:
    spec = load(preset)
    _assert_exact(cosim.compare_many(spec, _cases(spec, 11)))


@pytest.mark.parametrize(("preset", "case"), [
    ("lightnorm", 0), ("lightnorm", 1), ("bf16-standard", 0), ("bf16-standard", 1)])
def test_centered_forward_backward_bit_exact(preset: str, case: int) -> None:
    """The centered normalize form (docs/numerics.md section 8): its extra lane stage, mu and
    beta in P; case 1 (edge) holds an all-zero and a constant channel (y = beta)."""
    spec = load(preset).with_normalize("centered")
    assert "%Warning" not in vlt.lint(rtl.render_rtl(spec), rtl.TOP)
    _assert_exact(cosim.compare_many(spec, [_cases(spec, 13)[case]]))


def test_compare_api_single_pass_and_stress() -> None:
    spec = load("fp32-baseline")
    shape = (2, 2, 3, 5)
    quiet = cosim.compare(spec, shape, seed=3, pass_="forward", stress=0.0)
    busy = cosim.compare(spec, shape, seed=3, pass_="forward", stress=0.5)
    for r in (quiet, busy):
        assert {"spec", "pass", "elements", "mismatches", "bit_exact", "first_mismatches",
                "cycles"} <= set(r)
        assert r["spec"] == "fp32-baseline" and r["pass"] == "forward"
        assert r["bit_exact"] and r["mismatches"] == 0 and r["first_mismatches"] == []
        # 2 channels x 30 elements (y) + 2 x 9 per-channel result fields
        assert r["elements"] == 2 * 30 + 2 * 9
    # random idle cycles and back-pressure cost cycles, and change nothing else
    assert busy["cycles"] > quiet["cycles"] > 0
    bwd = cosim.compare(spec, shape, seed=3, pass_="backward")
    assert bwd["bit_exact"] and bwd["pass"] == "backward" and set(bwd["cycles_by_pass"]) == {
        "backward"}
    with pytest.raises(ValueError):
        cosim.compare(spec, shape, pass_="sideways")


def test_short_channels_and_runs_split_by_channel() -> None:
    """n below the lanes (one partial beat), n = 2, and channels spread over several runs."""
    spec = load("fp32-baseline")
    cases = [cosim.Case("partial", (1, 3, 1, 5), 4), cosim.Case("two", (1, 2, 1, 2), 5),
             cosim.Case("split", (1, 5, 1, 17), 6)]
    res = cosim.compare_many(spec, cases, channels_per_run=2)
    _assert_exact(res)
    assert [r["runs"] for r in res] == [4, 2, 6]


def _standard(name: str, x: dict[str, Any], dy: dict[str, Any]) -> dict[str, Any]:
    """A small standard-BN spec with storage ``x`` (y like x) and ``dy`` (dx like dy)."""
    return {
        "name": name, "bn": {"mode": "standard"},
        "hw": {"lanes": 4, "max_channel_elems": 256, "accum_ways": 2},
        "storage": {"x": x, "y": x, "dy": dy, "dx": dy},
        "compute": {"exp_bits": 6, "man_bits": 9},
        "accum": {"exp_bits": 8, "man_bits": 15},
        "scalar": {"exp_bits": 8, "man_bits": 15},
    }


FP_E5M6 = {"kind": "fp", "exp_bits": 5, "man_bits": 6}
CONSTANT_SPECS = {
    "fp": _standard("const-fp", FP_E5M6, {"kind": "bfp", "block": 4, "man_bits": 6,
                                          "exp_bits": 6}),
    "bfp": _standard("const-bfp", {"kind": "bfp", "block": 8, "man_bits": 5, "exp_bits": 6},
                     FP_E5M6),
    "mx": _standard("const-mx", {"kind": "mx", "element": "fp8_e4m3", "block": 8}, FP_E5M6),
}


@pytest.mark.parametrize("family", sorted(CONSTANT_SPECS))
def test_standard_bn_constant_channels_bit_exact(family: str) -> None:
    """Standard BN's constancy flag in the RTL (docs/numerics.md sections 8 and 10): constant
    channels of several values and signs (zeros of both signs among them) get var = +0 and
    inv_sigma = +0, next to channels that differ from the constant in one element - the
    first, one in a later block, the last - which keep the rules of section 8; n = 29 is not a
    multiple of the lanes or blocks (the lanes past n of the last beat hold other values)."""
    spec = from_dict(CONSTANT_SPECS[family])
    n = 29
    consts = [0.0, 3.0, -0.7, 1e-2, -250.0]
    offs = [(-0.7, 0, -0.9), (-0.7, 12, -0.5), (3.0, n - 1, 2.5), (0.0, 17, 2.0 ** -4)]
    shape = (1, len(consts) + len(offs) + 1, 1, n)
    d = cosim.default_data(spec, shape, 5)
    x = np.empty(shape)
    for c, v in enumerate(consts):
        x[0, c, 0] = v
    for k, (v, i, w) in enumerate(offs):
        c = len(consts) + k
        x[0, c, 0] = v
        x[0, c, 0, i] = w
    zeros = x[0, -1, 0]  # a constant channel of +0 and -0
    zeros[:] = np.where(np.arange(n) % 3 == 1, -0.0, 0.0)
    d["x"] = x
    res = cosim.compare_many(spec, [cosim.Case("constant", shape, 5, "both", d)])
    _assert_exact(res)
    # the flag is what the golden model says: the constant channels, not the others
    inv_sigma = golden.forward(spec, x, d["gamma"], d["beta"]).inv_sigma
    flat = [c for c in range(shape[1]) if inv_sigma[c] == 0]
    assert flat == [*range(len(consts)), shape[1] - 1], inv_sigma


TINY = {
    "name": "tiny-cosim", "bn": {"mode": "range", "chunks": 2},
    "hw": {"lanes": 1, "max_channel_elems": 256},
    "storage": {
        "x": {"kind": "bfp", "block": 4, "man_bits": 5, "exp_bits": 6},
        "y": {"kind": "bfp", "block": 2, "man_bits": 4, "exp_bits": 5, "carry": "raise"},
        "dy": {"kind": "fp", "exp_bits": 5, "man_bits": 6},
        "dx": {"kind": "fp", "exp_bits": 5, "man_bits": 4, "rounding": "truncate"},
    },
    "compute": {"exp_bits": 6, "man_bits": 7},
    "accum": {"exp_bits": 7, "man_bits": 10, "rounding": "truncate"},
    "scalar": {"exp_bits": 8, "man_bits": 12},
}


def test_mismatch_reported_with_patterns_and_waveform(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong expected pattern is caught: first element with both patterns, FST kept."""
    spec = from_dict(TINY)
    orig = cosim.prepare_runs

    def tampered(*args: Any, **kw: Any) -> Any:
        runs, meta = orig(*args, **kw)
        d = Path(runs[0]["dir"])
        with np.load(d / "expect.npz") as z:
            ex = {k: z[k] for k in z.files}
        ex["bits"][3, 0] ^= np.uint64(1)
        np.savez(d / "expect.npz", **ex)
        return runs, meta

    monkeypatch.setattr(cosim, "prepare_runs", tampered)
    r = cosim.compare(spec, (1, 2, 1, 13), seed=5, pass_="forward", waves=True)
    assert not r["bit_exact"] and r["mismatches"] == 1
    first = r["first_mismatches"][0]
    assert first["tensor"] == "y" and first["index"] == [0, 3]  # beat 3 of channel 0
    assert int(first["expected"], 16) ^ int(first["got"], 16) == 1
    assert "y[0, 3]" in cosim.describe(r)
    assert r["waveform"] is not None and Path(r["waveform"]).stat().st_size > 0
    assert r["artifacts"] is not None


# ---- random valid specs -----------------------------------------------------------------------


@settings(max_examples=10, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(table=small_spec_tables())
def test_random_specs_bit_exact(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    assert "%Warning" not in vlt.lint(rtl.render_rtl(spec), rtl.TOP)
    _assert_exact(cosim.compare_many(spec, _cases(spec, 7)))


def test_models_of_two_environments_do_not_replace_each_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone's virtual environment and a checkout's share the tool cache: each builds its
    own model of a spec (the key names the environment's cocotb library) in its own folder,
    and a build never removes the other's binary, which another process may be running."""
    import cocotb_tools.config as ccfg

    from lightnorm.spec import load

    monkeypatch.setattr(cosim, "model_dir", lambda *a, **k: tmp_path / "model")
    builds: list[Path] = []

    def fake_build(argv: Any, mdir: Path, *args: Any) -> None:
        builds.append(mdir)
        (mdir / "lightnorm_tb").write_text("binary")

    monkeypatch.setattr(vlt, "verilate_and_make", fake_build)
    spec = load("lightnorm")
    first = cosim.build_model(spec)
    assert cosim.build_model(spec) == first and len(builds) == 1  # built once
    monkeypatch.setattr(ccfg, "libs_dir", Path("/another/venv/cocotb/libs"))
    second = cosim.build_model(spec)
    assert second != first and second.parent == first.parent and len(builds) == 2
    assert (first / "lightnorm_tb").is_file() and (second / "lightnorm_tb").is_file()
