"""Every preset's RTL: lint-clean and co-simulated bit-exact against the golden model.

One Verilator build per spec (cached by lightnorm.verify.cosim); random data and edge cases
(all-zero and constant channels, saturation, values below the smallest normal, a channel
length that is not a multiple of the block), forward and backward, with random idle cycles
and back-pressure on the streams.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lightnorm.codegen.rtl import render_rtl
from lightnorm.spec import dumps, from_dict, load, preset_names
from lightnorm.tools import verilator as vlt
from lightnorm.tools.eda import yosys_command
from lightnorm.tools.runner import run_tool
from lightnorm.verify import cosim

from .test_golden import _data


@pytest.mark.parametrize("name", preset_names())
def test_preset_lints_clean(name: str) -> None:
    vlt.lint(render_rtl(load(name)), "lightnorm_top")


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("kind", ["normal", "edge"])
def test_preset_cosim_bit_exact(name: str, kind: str) -> None:
    spec = load(name)
    # n = 2*11*13 = 286: not a multiple of any block size, >= every preset's minimum
    x, dy, g, b = _data(spec, (2, 3, 11, 13), seed=7, kind=kind)
    res = cosim.compare(spec, x.shape, pass_="both", data={"x": x, "dy": dy, "gamma": g,
                                                           "beta": b})
    assert res["elements"] > 0
    assert res["bit_exact"], res["first_mismatches"][:5]


@pytest.mark.parametrize("name", preset_names())
def test_preset_elaborates_in_yosys(name: str, tmp_path: Path) -> None:
    files = render_rtl(load(name))
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    srcs = " ".join(sorted(f for f in files if f.endswith((".v", ".sv"))))
    (tmp_path / "elab.ys").write_text(
        f"read_verilog -sv {srcs}\nhierarchy -check -top lightnorm_top\nproc\n"
        "tee -o elab_stat.txt stat\n")
    run = run_tool(yosys_command(tmp_path, "elab.ys", ["elab_stat.txt"]))
    stat = (tmp_path / "elab_stat.txt").read_text()
    assert "lightnorm_top" in stat, run.log_text()[-2000:]
    assert "Number of cells" in stat or "cells" in stat


def test_channel_shorter_than_one_beat_renders_and_lints() -> None:
    # n counters must hold n + lanes - 1 even when max_channel_elems < lanes (was a ValueError)
    table = tomllib.loads(dumps(load("bf16-standard")))
    table["hw"].update(lanes=16, max_channel_elems=2)
    spec = from_dict(table)
    assert "%Warning" not in vlt.lint(render_rtl(spec), "lightnorm_top")
