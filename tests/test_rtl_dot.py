"""The beat dot-product unit of the BFP-native backward (``ln_bfp_dot_*``, docs/numerics.md
section 6) on its own: driven in bulk through a Verilator C++ harness, combinational and with
every cut point registered (a stream, one beat per clock edge), against the exact integer
model - the sum of the products of the signed mantissas times 2^((Ex - mx + 1) + (Ey - my + 1)),
rounded once into A (float64 holds these sums exactly)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from lightnorm.backends import xls
from lightnorm.codegen import rtl
from lightnorm.spec import BFPFormat, FPFormat, load
from lightnorm.tools import verilator as vlt
from lightnorm.tools.cache import cache_root
from lightnorm.verify import fpnum

WORDS_WRAPPER = """// {top}: the unit under test with its inputs as one word vector (efx, efy,
// x_data, dy_data, in_mask from the low bits up) and its output zero-extended to 64 bits.
module {top} (
    input  wire clk,
    input  wire [{iw} - 1:0] in_vec,
    output wire [63:0] out
);
    wire [{wa} - 1:0] t;
    {unit} u ({clk}.efx(in_vec[{o_efx} +: {w_efx}]), .efy(in_vec[{o_efy} +: {w_efy}]),
        .x_data(in_vec[{o_x} +: {w_x}]), .dy_data(in_vec[{o_dy} +: {w_dy}]),
        .in_mask(in_vec[{o_m} +: {w_m}]), .t(t));
    assign out = {{{pad}'d0, t}};
    wire unused = &{{1'b0, clk, in_vec}};
endmodule
"""

MAIN = r"""// Streams vectors (WORDS uint32 words each, from argv[1]) through the wrapper, one per
// clock edge, and writes one uint64 result per vector (argv[2]); LAT = the unit's registers.
#include <cstdint>
#include <cstdio>
#include <vector>
#include "Vdot_tb.h"
#include "verilated.h"
int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    FILE* f = std::fopen(argv[1], "rb");
    std::vector<uint32_t> in;
    uint32_t w;
    while (std::fread(&w, 4, 1, f) == 1) in.push_back(w);
    std::fclose(f);
    const long n = (long)(in.size() / WORDS);
    std::vector<uint64_t> out(n);
    Vdot_tb top;
    top.clk = 0;
    for (long c = 0; c < n + LAT; ++c) {
        const long i = c < n ? c : n - 1;
        for (int k = 0; k < WORDS; ++k) top.in_vec[k] = in[i * WORDS + k];
        top.clk = 0;
        top.eval();
        if (LAT == 0) { if (c < n) out[c] = top.out; continue; }
        top.clk = 1;
        top.eval();
        const long r = c - LAT + 1;
        if (r >= 0 && r < n) out[r] = top.out;
    }
    f = std::fopen(argv[2], "wb");
    std::fwrite(out.data(), 8, out.size(), f);
    std::fclose(f);
    return 0;
}
"""


def _dot_unit(x: BFPFormat, y: BFPFormat, a: FPFormat, lanes: int, registered: bool
              ) -> tuple[str, dict[str, str], int]:
    """The dot unit (every cut registered, or none) with its helper modules, and its latency."""
    eu = rtl.bits_for(rtl.exp_bound([a, x, y], lanes)) + 1
    base = rtl.Modules(eu).bfp_dot(x, y, a, lanes)
    sections = lanes.bit_length() - 1 + 3
    cuts = frozenset(range(1, sections)) if registered else frozenset()
    reg = rtl.Modules(eu, rtl.FixedPlan({base: cuts}))
    name = reg.bfp_dot(x, y, a, lanes)
    return name, reg.text(), reg.latency(name)


def _run(x: BFPFormat, y: BFPFormat, a: FPFormat, lanes: int, registered: bool,
         ins: np.ndarray, unit: tuple[str, dict[str, str], int] | None = None) -> np.ndarray:
    """``ins``: rows (efx, efy, x elements..., dy elements..., mask) -> the results of the
    template's unit (or of ``unit``: its name, files and latency)."""
    name, files, lat = unit or _dot_unit(x, y, a, lanes, registered)
    widths = [x.exp_bits, y.exp_bits, lanes * (x.man_bits + 1), lanes * (y.man_bits + 1), lanes]
    offs = np.concatenate([[0], np.cumsum(widths)[:-1]]).tolist()
    iw = 32 * max(3, -(-sum(widths) // 32))  # > 64 bits: a word array in Verilator
    files = {**files, "dot_tb.v": WORDS_WRAPPER.format(
        top="dot_tb", iw=iw, wa=a.width, unit=name, clk=".clk(clk), .en(1'b1), " if lat else "",
        o_efx=offs[0], w_efx=widths[0], o_efy=offs[1], w_efy=widths[1], o_x=offs[2],
        w_x=widths[2], o_dy=offs[3], w_dy=widths[3], o_m=offs[4], w_m=widths[4],
        pad=64 - a.width)}
    main = f"#define WORDS {iw // 32}\n#define LAT {lat}\n" + MAIN
    d = cache_root("cosim") / f"dot-{vlt.digest(files, main)[:16]}"
    exe = vlt.build_cpp(files, "dot_tb", main, d, cflags="-O1")
    # pack every row into iw bits (python ints: exact), then into uint32 words
    ew_x, ew_y = x.man_bits + 1, y.man_bits + 1
    words = np.zeros((len(ins), iw // 32), np.uint32)
    for r, row in enumerate(ins.tolist()):
        v = row[0] | (row[1] << offs[1])
        for j in range(lanes):
            v |= row[2 + j] << (offs[2] + j * ew_x)
            v |= row[2 + lanes + j] << (offs[3] + j * ew_y)
        v |= row[-1] << offs[4]
        for k in range(iw // 32):
            words[r, k] = (v >> (32 * k)) & 0xFFFFFFFF
    with tempfile.TemporaryDirectory(prefix="ln_dot_") as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        words.tofile(fin)
        vlt.run([str(exe), str(fin), str(fout)], Path(tmp), Path(tmp) / "run.log", "dot unit")
        return np.fromfile(fout, np.uint64)


def _reference(x: BFPFormat, y: BFPFormat, a: FPFormat, lanes: int, ins: np.ndarray
               ) -> np.ndarray:
    efx, efy = ins[:, 0], ins[:, 1]
    xe, ye, mask = ins[:, 2:2 + lanes], ins[:, 2 + lanes:2 + 2 * lanes], ins[:, -1]
    on = ((mask[:, None] >> np.arange(lanes)) & 1).astype(bool)
    sx = np.where((xe >> x.man_bits) & 1, -1, 1) * (xe & x.max_mantissa)
    sy = np.where((ye >> y.man_bits) & 1, -1, 1) * (ye & y.max_mantissa)
    exact = np.where(on, sx * sy, 0).sum(axis=1)  # an exact integer
    scale = (efx - x.bias - x.man_bits + 1) + (efy - y.bias - y.man_bits + 1)
    val = np.ldexp(exact.astype(np.float64), scale)
    return fpnum.encode_array(fpnum.round_array(val, a), a)


def _inputs(x: BFPFormat, y: BFPFormat, lanes: int, n: int, rng: np.random.Generator
            ) -> np.ndarray:
    """Random beats and the edge cases: partial masks (a short last beat), zero beats, full
    scale of either sign on both sides (the largest sums, and the cancelling +-), the extreme
    exponent fields (saturation and underflow in A), one lane alone."""
    efx = rng.integers(0, 1 << x.exp_bits, n)
    efy = rng.integers(0, 1 << y.exp_bits, n)
    xe = rng.integers(0, 1 << (x.man_bits + 1), (n, lanes))
    ye = rng.integers(0, 1 << (y.man_bits + 1), (n, lanes))
    mask = np.full(n, (1 << lanes) - 1)
    q = n // 10
    mask[:q] = rng.integers(0, 1 << lanes, q)
    xe[q:2 * q] = x.max_mantissa
    ye[q:2 * q] = y.max_mantissa | (rng.integers(0, 2, (q, 1)) << y.man_bits)
    xe[2 * q:3 * q] = 0
    half = lanes // 2
    if half:  # x's +M, -M halves against one dy: the sum cancels to zero
        xe[3 * q:4 * q, half:] = xe[3 * q:4 * q, :half] ^ (1 << x.man_bits)
        ye[3 * q:4 * q, half:] = ye[3 * q:4 * q, :half]
    for k, (lo, hi) in enumerate(((0, 0), (0, -1), (-1, -1), (-1, 0), (1, 1))):
        sl = slice((4 + k) * q // 2 + 2 * q, (5 + k) * q // 2 + 2 * q)
        efx[sl] = lo % (1 << x.exp_bits)
        efy[sl] = hi % (1 << y.exp_bits)
    xe[-q:] *= (np.arange(lanes) == rng.integers(0, lanes, (q, 1)))  # one lane alone
    return np.concatenate([efx[:, None], efy[:, None], xe, ye, mask[:, None]], axis=1)


CASES = {
    # the presets' units: BFP(16,7,8) x BFP(16,7,8) into FP(8,15); BFP(32,5,8) into FP(8,11)
    # truncating
    "lightnorm": (BFPFormat(16, 7, 8), BFPFormat(16, 7, 8), FPFormat(8, 15, "nearest"), 16),
    "aggressive": (BFPFormat(32, 5, 8, carry="raise"), BFPFormat(32, 5, 8, carry="raise"),
                   FPFormat(8, 11, "truncate"), 16),
    # two different formats and a narrow A: products overflow and underflow A
    "mixed": (BFPFormat(4, 3, 4), BFPFormat(8, 6, 5), FPFormat(5, 10, "nearest"), 4),
    "one_lane": (BFPFormat(1, 4, 3), BFPFormat(2, 2, 4), FPFormat(4, 3, "truncate"), 1),
}


@pytest.mark.parametrize("registered", [False, True], ids=["comb", "piped"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_dot_unit_against_exact_model(case: str, registered: bool) -> None:
    x, y, a, lanes = CASES[case]
    rng = np.random.default_rng(17)
    ins = _inputs(x, y, lanes, 20_000, rng)
    got = _run(x, y, a, lanes, registered, ins)
    exp = _reference(x, y, a, lanes, ins)
    bad = np.flatnonzero(got != exp)
    assert bad.size == 0, (f"{bad.size} mismatches, first {ins[bad[0]].tolist()}: "
                           f"{int(got[bad[0]]):#x} != {int(exp[bad[0]]):#x}")


def test_exhaustive_small() -> None:
    """Every pair of signed mantissas and every exponent pair of a 1-lane BFP(1,2,3) x
    BFP(1,3,2) unit into a truncating FP(3,4), with the lane masked and not."""
    x, y, a = BFPFormat(1, 2, 3), BFPFormat(1, 3, 2), FPFormat(3, 4, "truncate")
    g = np.array(np.meshgrid(range(8), range(4), range(8), range(16), range(2),
                             indexing="ij")).reshape(5, -1).T
    got = _run(x, y, a, 1, True, g)
    assert np.array_equal(got, _reference(x, y, a, 1, g))


def test_the_check_can_fail() -> None:
    """A dot unit with the dy sign ignored differs from the model (the harness sees it)."""
    x, y, a, lanes = CASES["mixed"]
    ins = _inputs(x, y, lanes, 2_000, np.random.default_rng(3))
    flipped = ins.copy()
    flipped[:, 2 + lanes:2 + 2 * lanes] &= y.max_mantissa
    assert not np.array_equal(_run(x, y, a, lanes, False, ins),
                              _reference(x, y, a, lanes, flipped))


@pytest.mark.parametrize("preset", ["lightnorm", "lightnorm-aggressive"])
def test_xls_dot_unit_against_exact_model(preset: str) -> None:
    """The XLS backend's dot unit (the template module's ports around the DSLX bfp_dot, XLS
    combinational) in the same harness."""
    spec = load(preset)
    x, y = spec.storage.x, spec.storage.dy
    assert isinstance(x, BFPFormat) and isinstance(y, BFPFormat)
    b = xls.build(spec)
    (r,) = [r for r in b.replaced if r.module.startswith("ln_bfp_dot_")]
    files = {f: b.files[f] for f in (f"{r.module}.v", f"{r.xls_module}.v")}
    ins = _inputs(x, y, spec.hw.lanes, 20_000, np.random.default_rng(5))
    got = _run(x, y, spec.accum, spec.hw.lanes, False, ins, (r.module, files, 0))
    assert np.array_equal(got, _reference(x, y, spec.accum, spec.hw.lanes, ins))
