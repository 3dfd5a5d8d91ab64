"""A spec's DSLX (``OUT/xls/lightnorm_xls.x``): its arithmetic units, storage codecs and lanes.

The roles follow the template RTL (:func:`lightnorm.codegen.rtl.rtl_context`): the adders,
multipliers and conversions of the compute (P), accumulator (A) and scalar (S) formats, the
reciprocal (and, for standard BN, the square root) of the finalize unit, the decoders of the
x/dy storage into P and A (FP: ``cvt``; BFP: element + shared exponent), the encoders of the
y/dx lane results (FP: ``cvt``; BFP: a whole block), and the per-element lanes of
docs/numerics.md sections 8 and 9 (normalize, x_hat, dx). Each role is a DSLX function that
:mod:`lightnorm.tools.xls` schedules into its own pipelined Verilog module ``xls_<function>``
(roles that share a function share the module).

The per-channel finalize is two straight-line functions (``fin_fwd``, ``fin_bwd``: the
forward and backward programs of :func:`lightnorm.codegen.rtl.finalize_program`), which XLS
pipelines as a whole. Not here yet (see docs/xls.md): the statistics step (BFP block sums)
and the streaming top with its valid/ready shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightnorm.codegen.dslx import Batch, DslxModule, Functions, finalize_io, spec_exponent_width
from lightnorm.codegen.rtl import FINALIZE_OUTPUTS, finalize_program
from lightnorm.spec import BFPFormat, FPFormat, Spec
from lightnorm.spec.formats import MXFormat

MODULE = "lightnorm_xls"
VERILOG_PREFIX = "xls_"

ROLE_HELP = {
    "add_p": "add/sub, compute format P (lanes)",
    "mul_p": "multiply, P (lanes)",
    "add_a": "add, accumulator format A (reductions)",
    "mul_a": "multiply, A (dy * x_hat)",
    "add_s": "add/sub, scalar format S (finalize)",
    "mul_s": "multiply, S (finalize)",
    "recip_s": "reciprocal, S (finalize)",
    "sqrt_s": "square root, S (finalize, standard BN)",
    "p_to_a": "convert P -> A",
    "a_to_s": "convert A -> S",
    "s_to_p": "convert S -> P",
    "x_to_p": "x storage -> P",
    "x_to_a": "x storage -> A",
    "dy_to_p": "dy storage -> P",
    "dy_to_a": "dy storage -> A",
    "x_sq": "x * x rounded into A (standard BN, FP storage)",
    "y_enc": "lane result -> y storage",
    "dx_enc": "lane result -> dx storage",
    "norm_lane": "normalize lane: add(mul(x, scale), shift)",
    "xhat_lane": "x_hat lane: mul(sub(x, mu), inv_sigma)",
    "dx_lane": "dx lane",
    "y_scan": "BFP y encoder, write side: a beat's largest exponent and carry",
    "y_quant": "BFP y encoder, read side: one element at the block exponent",
    "dx_scan": "BFP dx encoder, write side",
    "dx_quant": "BFP dx encoder, read side",
    "x_beat_sum": "statistics: exact sum of a BFP x beat, rounded into A",
    "x_beat_sq": "statistics: exact sum of squares of a BFP x beat into A (standard BN)",
    "dy_beat_sum": "statistics: exact sum of a BFP dy beat into A",
    "fin_fwd": "finalize, forward program (S; straight-line, pipelined)",
    "fin_bwd": "finalize, backward program (S)",
}


@dataclass(frozen=True)
class Top:
    """One role of the design and the DSLX function / Verilog module that implements it."""

    role: str
    fn: str
    module: str
    batch: Batch  # its verification wrapper (one array parameter)


@dataclass
class XlsDesign:
    spec_name: str
    spec_hash: str
    apfloat: bool
    dslx: DslxModule
    tops: list[Top]

    def functions(self) -> list[str]:
        """Distinct functions to schedule, in role order."""
        seen: dict[str, None] = {}
        for t in self.tops:
            seen.setdefault(t.fn, None)
        return list(seen)

    def roles_of(self, fn: str) -> list[str]:
        return [t.role for t in self.tops if t.fn == fn]

    def top(self, role: str) -> Top:
        for t in self.tops:
            if t.role == role:
                return t
        raise KeyError(role)


Tops = list[tuple[str, str, Batch]]  # (role, function, its verification wrapper)


class StorageDSLX:
    """The DSLX functions of one storage-format family's roles in a spec's design."""

    @staticmethod
    def decoder(reg: Functions, f: Any, dst: FPFormat) -> tuple[str, list[int]]:
        """The function that converts a stored element into ``dst``, and its argument
        widths."""
        raise NotImplementedError

    @staticmethod
    def squares(reg: Functions, role: str, f: Any, a: FPFormat) -> Tops:
        """Standard BN: a lane's stored value squared into the accumulator format (none where
        the beat sums give the squares)."""
        raise NotImplementedError

    @staticmethod
    def encoder(reg: Functions, role: str, f: Any, p: FPFormat, lanes: int) -> Tops:
        """The functions that encode lane results (format ``p``) into the stream."""
        raise NotImplementedError

    @staticmethod
    def beat_sums(reg: Functions, role: str, f: Any, a: FPFormat, lanes: int, sq: bool
                  ) -> Tops:
        """The statistics step of a beat (``sq``: of its squares) into ``a``, where the
        family sums a beat on its own (``exact_beat_sum``)."""
        raise NotImplementedError

    @staticmethod
    def part(reg: Functions, kind: str, f: Any, p: FPFormat, a: FPFormat, lanes: int) -> str:
        """The XLS backend's function behind one template part of this family's stream (kind
        ``sum``/``sq``: a beat sum into ``a``; ``scan``/``quant``: the streaming encoder's two
        sides over lane results of ``p``), or "" where the template's module stays."""
        raise NotImplementedError


class FPStorageDSLX(StorageDSLX):
    """FP storage: conversions element by element; squares and sums by the lanes' FP rules."""

    @staticmethod
    def decoder(reg: Functions, f: FPFormat, dst: FPFormat) -> tuple[str, list[int]]:
        return reg.cvt(f, dst), [f.width]

    @staticmethod
    def squares(reg: Functions, role: str, f: FPFormat, a: FPFormat) -> Tops:
        fn = reg.mul(f, a)
        return [(f"{role}_sq", fn, reg.batch(fn, [f.width] * 2, a.width))]

    @staticmethod
    def encoder(reg: Functions, role: str, f: FPFormat, p: FPFormat, lanes: int) -> Tops:
        fn = reg.cvt(p, f)
        return [(f"{role}_enc", fn, reg.batch(fn, [p.width], f.width))]

    @staticmethod
    def beat_sums(reg: Functions, role: str, f: FPFormat, a: FPFormat, lanes: int, sq: bool
                  ) -> Tops:
        return []


    @staticmethod
    def part(reg: Functions, kind: str, f: FPFormat, p: FPFormat, a: FPFormat,
             lanes: int) -> str:
        return ""  # FP storage has no block parts


class BFPStorageDSLX(StorageDSLX):
    """BFP storage: an element with its block's exponent field; the block encoder and the
    streaming encoder's two sides; a beat's exact integer sums."""

    @staticmethod
    def decoder(reg: Functions, f: BFPFormat, dst: FPFormat) -> tuple[str, list[int]]:
        return reg.bfp_cvt(f, dst), [f.exp_bits, f.man_bits + 1]

    @staticmethod
    def squares(reg: Functions, role: str, f: BFPFormat, a: FPFormat) -> Tops:
        return []

    @staticmethod
    def encoder(reg: Functions, role: str, f: BFPFormat, p: FPFormat, lanes: int) -> Tops:
        fn = reg.bfp_encode(f, p)
        tops = [(f"{role}_enc", fn, reg.batch_bfp_encode(fn, f, p))]
        # the streaming encoder's two sides (the template's bfp_scan_* / bfp_quant_*)
        fn = reg.bfp_scan(f, p, lanes)
        tops.append((f"{role}_scan", fn, reg.batch_array(fn, p.width, lanes, reg.xw + 2)))
        fn = reg.bfp_quant(f, p)
        tops.append((f"{role}_quant", fn, reg.batch(fn, [p.width, reg.xw], f.man_bits + 1,
                                                    (False, True))))
        return tops

    @staticmethod
    def beat_sums(reg: Functions, role: str, f: BFPFormat, a: FPFormat, lanes: int, sq: bool
                  ) -> Tops:
        fn = reg.bfp_beat(f, a, lanes, sq)
        return [(f"{role}_beat_{'sq' if sq else 'sum'}", fn,
                 reg.batch_beat(fn, f, lanes, a.width))]


    @staticmethod
    def part(reg: Functions, kind: str, f: BFPFormat, p: FPFormat, a: FPFormat,
             lanes: int) -> str:
        if kind == "scan":
            return reg.bfp_scan(f, p, lanes)
        if kind == "quant":
            return reg.bfp_quant(f, p)
        return reg.bfp_beat(f, a, lanes, kind == "sq")


class MXStorageDSLX(StorageDSLX):
    """MX storage: an element with its block's E8M0 scale field converted into an FP format
    (the lanes' decoders). The block encoder and the exact beat sums have no DSLX function
    yet: the XLS backend keeps the template's modules for them (docs/xls.md)."""

    @staticmethod
    def decoder(reg: Functions, f: MXFormat, dst: FPFormat) -> tuple[str, list[int]]:
        return reg.mx_cvt(f, dst), [f.shared_exp_width, f.element_width]

    @staticmethod
    def squares(reg: Functions, role: str, f: MXFormat, a: FPFormat) -> Tops:
        return []

    @staticmethod
    def encoder(reg: Functions, role: str, f: MXFormat, p: FPFormat, lanes: int) -> Tops:
        return []

    @staticmethod
    def beat_sums(reg: Functions, role: str, f: MXFormat, a: FPFormat, lanes: int, sq: bool
                  ) -> Tops:
        return []

    @staticmethod
    def part(reg: Functions, kind: str, f: MXFormat, p: FPFormat, a: FPFormat,
             lanes: int) -> str:
        return ""


#: the DSLX part of each storage-format family, by kind
STORAGE_DSLX: dict[str, type[StorageDSLX]] = {"fp": FPStorageDSLX, "bfp": BFPStorageDSLX,
                                              "mx": MXStorageDSLX}


def design(spec: Spec, apfloat: bool = True) -> XlsDesign:
    """The DSLX module of a spec and its roles (deterministic: same spec, same text)."""
    P, A, S = spec.compute, spec.accum, spec.scalar
    roles = spec.storage.roles()
    std = spec.bn.mode == "standard"
    reg = Functions(spec_exponent_width(spec), apfloat=apfloat)
    tops: list[tuple[str, str, Batch]] = []

    def unit(role: str, fn: str, args: list[int], wo: int) -> None:
        tops.append((role, fn, reg.batch(fn, args, wo)))

    unit("add_p", reg.add(P), [P.width] * 2, P.width)
    unit("mul_p", reg.mul(P, P), [P.width] * 2, P.width)
    unit("add_a", reg.add(A), [A.width] * 2, A.width)
    unit("mul_a", reg.mul(A, A), [A.width] * 2, A.width)
    unit("add_s", reg.add(S), [S.width] * 2, S.width)
    unit("mul_s", reg.mul(S, S), [S.width] * 2, S.width)
    unit("recip_s", reg.recip(S), [S.width], S.width)
    if std:
        unit("sqrt_s", reg.sqrt(S), [S.width], S.width)
    unit("p_to_a", reg.cvt(P, A), [P.width], A.width)
    unit("a_to_s", reg.cvt(A, S), [A.width], S.width)
    unit("s_to_p", reg.cvt(S, P), [S.width], P.width)
    for r in ("x", "dy"):
        f = roles[r]
        for dst, tag in ((P, "p"), (A, "a")):
            fn, args = STORAGE_DSLX[f.kind].decoder(reg, f, dst)
            unit(f"{r}_to_{tag}", fn, args, dst.width)
    xs = roles["x"]
    if std:
        tops.extend(STORAGE_DSLX[xs.kind].squares(reg, "x", xs, A))
    for r in ("y", "dx"):
        f = roles[r]
        tops.extend(STORAGE_DSLX[f.kind].encoder(reg, r, f, P, spec.hw.lanes))
    # the statistics step of a storage whose beats sum exactly: rounded into A once per beat
    for r, sq in [("x", False), ("dy", False)] + ([("x", True)] if std else []):
        f = roles[r]
        tops.extend(STORAGE_DSLX[f.kind].beat_sums(reg, r, f, A, spec.hw.lanes, sq))
    unit("norm_lane", reg.norm_lane(P), [P.width] * 3, P.width)
    unit("xhat_lane", reg.xhat_lane(P), [P.width] * 3, P.width)
    unit("dx_lane", reg.dx_lane(P, std), [P.width] * (5 if std else 4), P.width)
    prog = finalize_program(spec)
    for role, pass_ in (("fin_fwd", "forward"), ("fin_bwd", "backward")):
        fn = reg.finalize(prog[pass_], pass_, S, A, std, FINALIZE_OUTPUTS)
        params, outs = finalize_io(prog[pass_], FINALIZE_OUTPUTS)
        widths = [A.width if n.startswith("acc_") else S.width for n in params]
        tops.append((role, fn, reg.batch_tuple(fn, widths, S.width, len(outs))))

    source = f"spec {spec.name} ({spec.hash[:16]})"
    text = reg.text(MODULE, source)
    mod = DslxModule(MODULE, text, {}, dict(reg.batches), reg.uses_apfloat)
    return XlsDesign(spec.name, spec.hash, apfloat, mod,
                     [Top(r, fn, VERILOG_PREFIX + fn, b) for r, fn, b in tops])


def render_xls(spec: Spec, apfloat: bool = True) -> dict[str, str]:
    """The DSLX files of a spec's ``OUT/xls/`` (text only; compiling is ``lightnorm hls``)."""
    d = design(spec, apfloat)
    return {f"{MODULE}.x": d.dslx.text}


__all__ = ["MODULE", "ROLE_HELP", "Top", "VERILOG_PREFIX", "XlsDesign", "design", "render_xls"]
