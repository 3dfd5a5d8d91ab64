"""The off-chip memory energy model (docs/energy.md), checked against hand-computed figures."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightnorm.cost import energy
from lightnorm.cost.energy import (
    DRAM_PJ_PER_BYTE,
    SRAM_ACCESSES_PER_BYTE,
    SRAM_PJ_PER_BYTE,
    channel_bits,
    layer_energy,
    layer_traffic_bits,
)
from lightnorm.spec import SpecError, from_dict, load, preset_names


def mixed_spec() -> Any:
    """x FP32, y FP(8,7), dy BFP(16,7,8), dx BFP(32,3,5) - one of each kind of transfer."""
    d = load("fp32-baseline").to_dict()
    d["name"] = "mixed"
    d["storage"]["y"] = {"kind": "fp", "exp_bits": 8, "man_bits": 7}
    d["storage"]["dy"] = {"kind": "bfp", "block": 16, "man_bits": 7, "exp_bits": 8}
    d["storage"]["dx"] = {"kind": "bfp", "block": 32, "man_bits": 3, "exp_bits": 5}
    return from_dict(d)


def test_documented_defaults() -> None:
    # 45 nm figures (Horowitz, ISSCC 2014): 640 pJ per 32-bit DRAM access, 5 pJ per 32-bit
    # access of an 8 KB SRAM; a staged byte is written into and read out of the buffer.
    assert DRAM_PJ_PER_BYTE == 640 / 4 == 160.0
    assert SRAM_PJ_PER_BYTE == 5 / 4 == 1.25
    assert SRAM_ACCESSES_PER_BYTE == 2
    assert energy.DATAFLOW == {"forward": (("x", 2), ("y", 1)),
                               "backward": (("x", 2), ("dy", 2), ("dx", 1))}


def test_bfp_padding_of_the_last_block_counts() -> None:
    # lightnorm: BFP(16,7,8) everywhere. Shape (2,3,3,5): n = 30 per channel, 3 channels.
    # ceil(30/16) = 2 blocks of 16*8 + 8 = 136 bits = 272 bits = 34 bytes per channel,
    # 102 bytes per transfer (unpadded it would be 90 * 8.5 / 8 = 95.625).
    spec = load("lightnorm")
    e = layer_energy(spec, (2, 3, 3, 5))
    assert (e.elements, e.elements_per_channel) == (90, 30)
    assert e.tensor_bytes == {"x": 102.0, "y": 102.0, "dy": 102.0, "dx": 102.0}
    assert (e.bytes_forward, e.bytes_backward, e.bytes_total) == (306.0, 510.0, 816.0)
    assert (e.dram_pj_forward, e.dram_pj_backward) == (306 * 160.0, 510 * 160.0)
    assert (e.sram_pj_forward, e.sram_pj_backward) == (306 * 2.5, 510 * 2.5)
    assert (e.memory_pj_forward, e.memory_pj_backward, e.memory_pj) == (49725.0, 82875.0,
                                                                        132600.0)
    assert e.memory_pj_per_element == 132600.0 / 90
    assert (e.datapath_pj, e.total_pj, e.total_pj_forward) == (None, None, None)
    assert layer_traffic_bits(spec, (2, 3, 3, 5)) == {
        "forward": {"x": 2 * 816, "y": 816}, "backward": {"x": 2 * 816, "dy": 2 * 816, "dx": 816}}


def test_mixed_formats_exact_bits() -> None:
    # shape (1,2,5,7): n = 35, C = 2
    # x FP32: 35*32 = 1120 bits/ch -> 280 B;  y FP(8,7): 560 bits/ch -> 140 B
    # dy BFP(16,7,8): 3 blocks * 136 = 408 bits/ch -> 102 B
    # dx BFP(32,3,5): 2 blocks * (32*4 + 5) = 266 bits/ch -> 66.5 B (exact bits: not rounded)
    spec = mixed_spec()
    assert channel_bits(spec.storage.dx, 35) == 266
    e = layer_energy(spec, (1, 2, 5, 7))
    assert e.tensor_bytes == {"x": 280.0, "y": 140.0, "dy": 102.0, "dx": 66.5}
    assert e.bytes_forward == 2 * 280 + 140 == 700.0
    assert e.bytes_backward == 2 * 280 + 2 * 102 + 66.5 == 830.5


def test_burst_model_rounds_each_channel_transfer_up() -> None:
    # 64-byte bursts, per channel: x 140 B -> 192, y 70 -> 128, dy 51 -> 64, dx 33.25 -> 64
    e = layer_energy(mixed_spec(), (1, 2, 5, 7), burst_bytes=64)
    assert e.tensor_bytes == {"x": 384.0, "y": 256.0, "dy": 128.0, "dx": 128.0}
    assert (e.bytes_forward, e.bytes_backward) == (1024.0, 1152.0)
    assert e.burst_bytes == 64


def test_datapath_energy_is_added_when_given() -> None:
    spec = load("lightnorm")
    one = layer_energy(spec, (2, 3, 3, 5), datapath_pj_per_element=10.0)
    assert (one.datapath_pj, one.total_pj) == (900.0, 133500.0)
    assert (one.datapath_pj_forward, one.total_pj_forward) == (None, None)
    split = layer_energy(spec, (2, 3, 3, 5),
                         datapath_pj_per_element={"forward": 4.0, "backward": 6.0})
    assert (split.datapath_pj_forward, split.datapath_pj_backward) == (360.0, 540.0)
    assert (split.total_pj_forward, split.total_pj_backward, split.total_pj) == (
        50085.0, 83415.0, 133500.0)


def test_energies_can_be_overridden() -> None:
    e = layer_energy(load("lightnorm"), (2, 3, 3, 5), dram_pj_per_byte=100.0,
                     sram_pj_per_byte=0.5, sram_accesses_per_byte=1)
    assert e.memory_pj == 816 * 100.0 + 816 * 0.5
    assert (e.dram_pj_per_byte, e.sram_pj_per_byte, e.sram_accesses_per_byte) == (100.0, 0.5, 1)


@pytest.mark.parametrize("name", preset_names())
def test_agrees_with_spec_bytes_per_element_without_padding(name: str) -> None:
    spec = load(name)
    shape = (4, 2, 4, 8)  # 128 elements per channel: a whole number of blocks
    e = layer_energy(spec, shape)
    per = spec.offchip_bytes_per_element()
    assert e.bytes_forward == per["forward"] * e.elements
    assert e.bytes_backward == per["backward"] * e.elements


def test_lightnorm_over_fp32_memory_energy_is_the_bits_ratio() -> None:
    shape = (8, 16, 14, 14)  # n = 1568 = 98 blocks of 16
    ln = layer_energy(load("lightnorm"), shape)
    fp = layer_energy(load("fp32-baseline"), shape)
    assert math.isclose(ln.memory_pj / fp.memory_pj, 8.5 / 32, rel_tol=1e-12)


@pytest.mark.parametrize("kwargs,field", [
    ({"shape": (2, 3, 3)}, "shape"),
    ({"shape": (2, 0, 3, 3)}, "shape"),
    ({"shape": (2, 3.0, 3, 3)}, "shape"),
    ({"shape": 5}, "shape"),
    ({"dram_pj_per_byte": -1.0}, "dram_pj_per_byte"),
    ({"sram_pj_per_byte": float("nan")}, "sram_pj_per_byte"),
    ({"sram_accesses_per_byte": -1}, "sram_accesses_per_byte"),
    ({"burst_bytes": 0}, "burst_bytes"),
    ({"datapath_pj_per_element": {"forward": 1.0}}, "datapath_pj_per_element"),
    ({"datapath_pj_per_element": {"forward": 1.0, "backward": -2.0}},
     "datapath_pj_per_element['backward']"),
    ({"datapath_pj_per_element": True}, "datapath_pj_per_element"),
])
def test_bad_parameters_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"shape": (2, 3, 3, 5), **kwargs}
    with pytest.raises(SpecError) as info:
        layer_energy(load("lightnorm"), **args)
    assert str(info.value).startswith(f"{field} = "), info.value


def test_to_dict_is_plain() -> None:
    d = layer_energy(load("lightnorm"), (2, 3, 3, 5), datapath_pj_per_element=1.0).to_dict()
    assert d["shape"] == [2, 3, 3, 5] and d["spec"] == "lightnorm"
    assert d["memory_pj_per_element"] == 132600.0 / 90 and d["total_pj"] == 132690.0


# --- the datapath carried to the layer's channel length -----------------------------------------
# lightnorm's synthesis at 5 ns on its default workload (2 channels of 4096 elements, 16 lanes):
# 1263 forward and 1159 backward cycles (docs/benchmarks.md)
MEASURED = {"power_mw": {"forward": 1016.87, "backward": 1238.348}, "clock_ns": 5.0,
            "cycles_per_element": {"forward": 1263 / 8192, "backward": 1159 / 8192},
            "workload_shape": (1, 2, 1, 4096), "lanes": 16}


def _at(n: int, **kw: Any) -> dict[str, Any]:
    return energy.datapath_at_channel_length(**{**MEASURED, **kw}, elements_per_channel=n)


def test_channel_length_overhead_by_hand() -> None:
    at = _at(25088)
    # overhead per channel: 1263 / 2 - 2 x 256 beats = 119.5 cycles; the layer's channel:
    # 2 x 1568 beats + 119.5
    assert at["overhead_cycles_per_channel"] == {"forward": 119.5, "backward": 67.5}
    assert at["cycles_per_channel"]["forward"] == 3255.5
    assert math.isclose(at["pj_per_element"]["forward"], 1016.87 * 5.0 * 3255.5 / 25088)
    assert at["workload"] == {"channels": 2, "elements_per_channel": 4096}


@given(st.integers(1, 64), st.integers(1, 1 << 14), st.integers(1, 1 << 20),
       st.integers(0, 500))
def test_channel_length_reproduces_the_workload_and_falls_with_length(
        lanes: int, n_w: int, n: int, overhead: int) -> None:
    beats_w = -(-n_w // lanes)
    cpe = (2 * beats_w + overhead) / n_w
    kw = {"power_mw": {"forward": 3.0, "backward": 5.0}, "clock_ns": 2.0,
          "cycles_per_element": {"forward": cpe, "backward": cpe},
          "workload_shape": (n_w, 3, 1, 1), "lanes": lanes}
    same = _at(n_w, **kw)
    for p, mw in kw["power_mw"].items():  # type: ignore[attr-defined]
        assert math.isclose(same["pj_per_element"][p], mw * 2.0 * cpe, rel_tol=1e-12)
        assert math.isclose(same["overhead_cycles_per_channel"][p], overhead, abs_tol=1e-6)
    # per element, a channel of whole beats costs less the longer it is (the overhead spreads)
    whole = lanes * max(1, n // lanes)
    longer = _at(2 * whole, **kw)["pj_per_element"]["forward"]
    assert longer <= _at(whole, **kw)["pj_per_element"]["forward"] * (1 + 1e-12)


@pytest.mark.parametrize(("kw", "field"), [
    ({"lanes": 0}, "lanes"),
    ({"elements_per_channel": 0}, "elements_per_channel"),
    ({"clock_ns": -1.0}, "clock_ns"),
    ({"power_mw": {"forward": float("inf"), "backward": 1.0}}, "power_mw['forward']"),
    ({"workload_shape": (1, 2, 4096)}, "shape"),
    # fewer cycles than the workload's beats: not a measurement of this design
    ({"cycles_per_element": {"forward": 0.1, "backward": 0.2}}, "cycles_per_element['forward']"),
])
def test_channel_length_bad_input_names_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        energy.datapath_at_channel_length(**{**MEASURED, "elements_per_channel": 100, **kw})
    assert str(info.value).startswith(f"{field} = "), info.value


def test_energy_stage_carries_the_synthesis_to_the_layer() -> None:
    """The flow's energy stage: the synthesis's per-pass power, clock, cycles and workload give
    the layer's datapath energy at its channel length; a synthesis record with power but no
    workload shape is refused in one line rather than taken at the wrong length."""
    from lightnorm.errors import ToolError
    from lightnorm.flow import stages as st

    synth = {"power_mw": MEASURED["power_mw"], "clock_ns": 5.0,
             "cycles_per_element": MEASURED["cycles_per_element"],
             "activity": {"workload": {"shape": [1, 2, 1, 4096]}}}
    opts = st.FlowOptions(layer_shape=(32, 64, 28, 28))
    d = st.layer_metrics(load("lightnorm"), opts, st._measured_datapath(synth))
    fwd = 1016.87 * 5.0 * (2 * 1568 + 119.5) / 25088
    assert math.isclose(d["datapath_model"]["pj_per_element"]["forward"], fwd)
    assert math.isclose(d["datapath_pj_forward"], fwd * 32 * 64 * 28 * 28)
    assert math.isclose(d["datapath_model"]["workload_pj_per_element"]["forward"],
                        1016.87 * 5.0 * 1263 / 8192)
    with pytest.raises(ToolError, match="activity.workload.shape"):
        st._measured_datapath({**synth, "activity": {}})
    assert st._measured_datapath({"energy_pj_per_element": {"forward": 1.0}}) is None
