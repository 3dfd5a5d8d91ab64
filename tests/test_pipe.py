"""codegen.pipe: registers at cut points change latency only; the cut chooser is optimal."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.codegen.env import HW_DELIMITERS, make_environment
from lightnorm.codegen.pipe import Pipe, balanced_cuts, group_delays
from lightnorm.tools import verilator as vlt

# a toy unit of three sections: s = a + b | t = s * c (c from section 0, crossing one cut) |
# y = t ^ (d + s) (s and d crossing two)
TOY = """<% set body %>
<@ p.input("a", 8) @><@ p.input("b", 8) @><@ p.input("c", 8) @><@ p.input("d", 8) @>
<@ p.at(0) @>
    <@ p.wire("s", 9) @> = a + b;
<@ p.at(1) @>
    <@ p.wire("t", 17) @> = <@ p.ref("s") @> * <@ p.ref("c") @>;
<@ p.at(2) @>
    assign y = <@ p.ref("t") @> ^ {8'd0, <@ p.ref("d") @> + <@ p.ref("s") @>};
<% endset %>
module toy (
<@ p.clock_ports() @>    input  wire [7:0] a,
    input  wire [7:0] b,
    input  wire [7:0] c,
    input  wire [7:0] d,
    output wire [16:0] y
);
<@ p.declarations() @><@ body @><@ p.registers() @>endmodule
"""

MAIN = r"""#include <cstdint>
#include <cstdio>
#include "verilated.h"
#include "Vtoy.h"
int main(int argc, char** argv) {
    VerilatedContext ctx;
    Vtoy* t = new Vtoy(&ctx);
    std::FILE* f = std::fopen(argv[1], "rb");
    std::FILE* o = std::fopen(argv[2], "wb");
    uint32_t v[5];
    while (std::fread(v, sizeof(uint32_t), 5, f) == 5) {
        t->a = v[0]; t->b = v[1]; t->c = v[2]; t->d = v[3];
#ifdef REGISTERED
        t->en = v[4]; t->clk = 0; t->eval(); t->clk = 1; t->eval();
#else
        t->eval();
#endif
        uint32_t y = t->y;
        std::fwrite(&y, sizeof(uint32_t), 1, o);
    }
    std::fclose(f); std::fclose(o); t->final(); delete t; return 0;
}
"""


def render(cuts: frozenset[int]) -> str:
    env = make_environment(Path("."), {}, **HW_DELIMITERS)
    return env.from_string(TOY).render(p=Pipe(3, cuts))


def test_no_cut_is_the_combinational_module() -> None:
    text = render(frozenset())
    assert "clk" not in text and "reg" not in text and "always" not in text
    assert "wire [16:0] t = s * c;" in text


def test_cuts_declare_the_delayed_copies_once() -> None:
    text = render(frozenset({1, 2}))
    assert "input  wire clk," in text and "input  wire en," in text
    # s crosses both cuts (used in section 2), c one, d two
    for decl in ("reg  [8:0] s_d1;", "reg  [8:0] s_d2;", "reg  [7:0] c_d1;",
                 "reg  [7:0] d_d2;", "reg  [16:0] t_d1;"):
        assert text.count(decl) == 1, decl
    assert "t_d1 ^ {8'd0, d_d2 + s_d2}" in text


def test_pipe_errors() -> None:
    with pytest.raises(ValueError, match="outside"):
        Pipe(2, frozenset({2}))
    p = Pipe(2)
    p.at(1)
    with pytest.raises(KeyError, match="before it was defined"):
        p.ref("x")
    with pytest.raises(ValueError, match="after section"):
        p.at(0)
    p.input("a", 4)
    with pytest.raises(ValueError, match="twice"):
        p.input("a", 4)


@pytest.mark.parametrize("cuts", [frozenset(), frozenset({1}), frozenset({2}),
                                  frozenset({1, 2})])
def test_registers_change_latency_only(tmp_path: Path, cuts: frozenset[int]) -> None:
    """The same random stream through each placement (with random stall cycles): the outputs
    are the combinational results, delayed by the latency in enabled cycles."""
    text = render(cuts)
    main = ("#define REGISTERED\n" if cuts else "") + MAIN
    exe = vlt.build_cpp({"toy.v": text}, "toy", main, tmp_path / "build")
    rng = np.random.default_rng(len(cuts) * 7 + sum(cuts))
    n = 2000
    v = rng.integers(0, 256, size=(n, 5), dtype=np.uint32)
    v[:, 4] = rng.random(n) < 0.7  # enable: 30 % stall cycles
    fin, fout = tmp_path / "in.bin", tmp_path / "out.bin"
    v.tofile(fin)
    vlt.run([str(exe), str(fin), str(fout)], tmp_path, tmp_path / "run.log", "toy")
    got = np.fromfile(fout, np.uint32)
    a, b, c, d = (v[:, i].astype(np.int64) for i in range(4))
    s = a + b
    want = (((s * c) & 0x1FFFF) ^ ((d + s) & 0x1FF)).astype(np.uint32)
    lat = len(cuts)
    if lat == 0:
        assert np.array_equal(got, want)
        return
    # a registered unit advances on enabled clock edges only (the output is read after each
    # edge): the k-th enabled input is the output from the lat-th enabled edge on (its own
    # edge counts), and stays there through stall cycles until the next enabled edge
    en = np.flatnonzero(v[:, 4])
    checked = 0
    for k in range(len(en) - lat):
        first, nxt = en[k + lat - 1], en[k + lat]
        assert np.all(got[first:nxt] == want[en[k]]), k
        checked += nxt - first
    assert checked > 1500


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=7), st.data())
def test_balanced_cuts_is_optimal(delays: list[float], data: st.DataObject) -> None:
    stages = data.draw(st.integers(0, len(delays) - 1))
    cuts = balanced_cuts(delays, stages)
    assert len(cuts) == stages and all(1 <= c < len(delays) for c in cuts)
    best = min(max(group_delays(delays, c))
               for c in itertools.combinations(range(1, len(delays)), stages))
    assert max(group_delays(delays, cuts)) == pytest.approx(best)


def test_balanced_cuts_rejects_too_many_stages() -> None:
    with pytest.raises(ValueError):
        balanced_cuts([1.0, 2.0], 2)
