"""The accelerator spec: one BN hardware variant, as frozen, validated dataclasses."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import SpecError
from .formats import FPFormat, StorageFormat, build_fp, build_storage, storage_table
from .names import reserved_reason
from .rounding import round_scalar
from .schema import AnyText, Choice, Float, Int, Text, build, param, to_table

NORM_MODES = ("standard", "range")
#: the normalize pass's forms (docs/numerics.md section 8)
NORMALIZE_FORMS = ("affine", "centered")
STORAGE_ROLES = ("x", "y", "dy", "dx")
MAX_CHANNEL_ELEMS = 1 << 26


def nested(builder: Any, doc: str, default: Any = dataclasses.MISSING) -> Any:
    meta = {"nested": builder, "doc": doc}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class BNConfig:
    mode: str = param(Choice(*NORM_MODES), "standard (mean, variance, sqrt) or range BN")
    chunks: int = param(
        Int(1, 64),
        "range BN: average the max and min of this many equal chunks and use C(n/chunks); "
        "1 = whole-channel range. Standard BN: must be 1",
        1,
    )
    eps: float = param(Float(0.0, 1.0, hi_open=True), "added to sigma (range) or variance", 1e-5)
    momentum: float = param(Float(0.0, 1.0), "running-statistics momentum (PyTorch meaning)", 0.1)
    normalize: str = param(
        Choice(*NORMALIZE_FORMS),
        "the normalize pass per element (docs/numerics.md section 8): affine = x * scale + "
        "shift (a multiply and an add per lane; cancels when the mean is large against "
        "sigma), centered = (x - mean) * scale + beta (one more add per lane, no cancellation)",
        "affine",
    )

    def validate(self, path: str) -> None:
        if self.mode == "standard" and self.chunks != 1:
            raise SpecError(f"{path}.chunks", self.chunks, "1 for standard BN (chunks are a range "
                            "BN option)")


@dataclass(frozen=True)
class HWConfig:
    lanes: int = param(Int(1, 64, power_of_two=True), "elements processed per clock cycle")
    max_channel_elems: int = param(
        Int(2, MAX_CHANNEL_ELEMS),
        "largest number of elements per channel (N*H*W) the hardware supports",
    )
    accum_ways: int = param(
        Int(1, 16, power_of_two=True),
        "interleaved partial sums of every channel sum: beat b goes into partial b mod W, then "
        "a pairwise tree (docs/numerics.md section 6); part of the numerics. An accumulator "
        "adder of latency < W cycles then takes one beat per cycle. 1 = one sequential sum",
        4,
    )
    clock_ns: float = param(Float(0.1, 1000.0), "target clock period in ns", 5.0)
    part: str = param(
        Text(r"[a-z0-9][a-z0-9-]*", "an FPGA part name of lowercase letters, digits and '-'"),
        "FPGA part for the Vitis HLS script",
        "xczu3eg-sbva484-1-e",
    )


def _storage_builder(raw: Any, path: str) -> Storage:
    if not isinstance(raw, dict):
        raise SpecError(path, raw, "a table with keys " + ", ".join(STORAGE_ROLES))
    for key in raw:
        if key not in STORAGE_ROLES:
            raise SpecError(f"{path}.{key}", raw[key], "no such key (known: "
                            + ", ".join(STORAGE_ROLES) + ")")
    vals = {}
    for role in STORAGE_ROLES:
        if role not in raw:
            raise SpecError(f"{path}.{role}", None, "a value (the field is required)")
        vals[role] = build_storage(raw[role], f"{path}.{role}")
    return Storage(**vals)


@dataclass(frozen=True)
class Storage:
    """Off-chip formats of the four streamed tensors."""

    x: StorageFormat = nested(build_storage, "input activations")
    y: StorageFormat = nested(build_storage, "output activations")
    dy: StorageFormat = nested(build_storage, "incoming gradient")
    dx: StorageFormat = nested(build_storage, "outgoing gradient")

    def roles(self) -> dict[str, StorageFormat]:
        return {r: getattr(self, r) for r in STORAGE_ROLES}


class _Name(Text):
    """A spec name: the characters of a file name and identifier, and none that is reserved
    (:mod:`.names`: generated and system headers, keywords, library prefixes)."""

    def __call__(self, path: str, value: Any) -> str:
        name = super().__call__(path, value)
        why = reserved_reason(name)
        if why is not None:
            raise SpecError(path, value, why)
        return name


#: fields added after specs had hashes (section, field, default): left out of the hash at their
#: default, so that a spec that does not set one keeps its hash, and with it its generated files
#: (the RTL prints the hash), stored results and caches
HASH_OMITS_DEFAULT = (("bn", "normalize", "affine"),)

NAME_MAX_LEN = 64
_NAME = _Name(
    r"[a-z][a-z0-9_-]*",
    f"a lowercase name of letters, digits, '_' and '-' starting with a letter, at most "
    f"{NAME_MAX_LEN} characters (it becomes a file name and, with '-' as '_', a C++/Verilog "
    "identifier), not a reserved word or header name (docs/spec.md)",
    max_len=NAME_MAX_LEN,
)


@dataclass(frozen=True)
class Spec:
    """One BN accelerator variant."""

    name: str = param(_NAME, "variant name")
    bn: BNConfig = nested(lambda raw, p: build(BNConfig, raw, p), "normalization")
    hw: HWConfig = nested(lambda raw, p: build(HWConfig, raw, p), "hardware shape")
    storage: Storage = nested(_storage_builder, "off-chip formats of x, y, dy, dx")
    compute: FPFormat = nested(build_fp, "per-lane arithmetic (normalize, dx lanes)")
    accum: FPFormat = nested(build_fp, "accumulators (sums over a channel)")
    scalar: FPFormat = nested(build_fp, "per-channel scalars (mean, 1/sigma, gamma, beta...)")
    description: str = param(AnyText(), "free text", "")

    # --- identity -------------------------------------------------------------------------
    @property
    def ident(self) -> str:
        """C++/Verilog identifier of the variant."""
        return self.name.replace("-", "_")

    def to_dict(self) -> dict[str, Any]:
        d = to_table(self)
        d["storage"] = {r: storage_table(f) for r, f in self.storage.roles().items()}
        return d

    @property
    def hash(self) -> str:
        d = self.to_dict()
        for section, key, default in HASH_OMITS_DEFAULT:
            if d[section][key] == default:
                del d[section][key]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_clock(self, clock_ns: float | None) -> Spec:
        """This spec generated for ``clock_ns`` (``hw.clock_ns``; None: unchanged), checked
        like any spec field (SpecError on ``hw.clock_ns``)."""
        if clock_ns is None or float(clock_ns) == self.hw.clock_ns:
            return self
        table = self.to_dict()
        table["hw"]["clock_ns"] = float(clock_ns)
        return build(Spec, table, "")

    def with_normalize(self, form: str) -> Spec:
        """This spec with the normalize form ``form`` (``bn.normalize``, docs/numerics.md
        section 8), checked like any spec field (SpecError on ``bn.normalize``)."""
        if form == self.bn.normalize:
            return self
        table = self.to_dict()
        table["bn"]["normalize"] = form
        return build(Spec, table, "")

    # --- derived facts --------------------------------------------------------------------
    def min_channel_elems(self) -> int:
        """Smallest n the hardware accepts: n >= 2 per chunk and at least one beat per chunk."""
        k, lanes = self.bn.chunks, self.hw.lanes
        return max(2 * k, (k - 1) * lanes + 1)

    @property
    def exact_dot(self) -> bool:
        """The BFP-native backward (docs/numerics.md section 9): x and dy both sum their
        beat's products exactly (``integer_dot``), so pass 1 sums x * dy and dy per beat and
        the finalize forms dgamma from the sums; else pass 1 sums dy * x_hat per lane."""
        return self.storage.x.integer_dot and self.storage.dy.integer_dot

    def bits_per_element(self) -> dict[str, float]:
        return {r: f.bits_per_element for r, f in self.storage.roles().items()}

    def offchip_bytes_per_element(self) -> dict[str, float]:
        """Bytes moved per element of one BN layer (dataflow in docs/numerics.md, section 8).

        Forward reads x twice (statistics pass, normalize pass) and writes y; backward reads x
        and dy twice (reduction pass, dx pass) and writes dx.
        """
        b = self.bits_per_element()
        fwd = (2 * b["x"] + b["y"]) / 8
        bwd = (2 * b["x"] + 2 * b["dy"] + b["dx"]) / 8
        return {"forward": fwd, "backward": bwd, "total": fwd + bwd}

    def validate(self, path: str) -> None:
        del path
        for role, fmt in self.storage.roles().items():
            fmt.check_lanes(self.hw.lanes, f"storage.{role}")
        n_min = self.min_channel_elems()
        if self.hw.max_channel_elems < n_min:
            raise SpecError(
                "hw.max_channel_elems", self.hw.max_channel_elems,
                f">= {n_min} (n >= 2 elements and >= 1 beat per chunk with "
                f"bn.chunks = {self.bn.chunks}, hw.lanes = {self.hw.lanes})",
            )
        s = self.scalar
        for key, val in (("eps", self.bn.eps), ("momentum", self.bn.momentum)):
            q = round_scalar(val, s)
            if q == 0.0:
                raise SpecError(f"bn.{key}", val, f"a value that does not flush to zero in the "
                                f"scalar format {s} (smallest normal {s.min_normal:g})")
        inv_n = round_scalar(1.0 / self.hw.max_channel_elems, s)
        if inv_n == 0.0:
            raise SpecError("hw.max_channel_elems", self.hw.max_channel_elems,
                            f"a size whose 1/n does not flush to zero in the scalar format {s}")
        if self.hw.max_channel_elems > s.max_value:
            raise SpecError("hw.max_channel_elems", self.hw.max_channel_elems,
                            f"at most the scalar format's largest value {s.max_value:g}")


def check_channel_elems(spec: Spec, n: int) -> None:
    """Reject a run whose per-channel element count the hardware cannot take."""
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    if not lo <= n <= hi:
        raise SpecError("N*H*W (elements per channel)", n,
                        f"an integer in {lo}..{hi} for spec {spec.name!r}")


def range_constant(n: int, chunks: int) -> float:
    """C(n/K)/K in float64: sigma_hat = (sum_k max_k - sum_k min_k) * C(n/K)/K."""
    m = n / chunks
    return 1.0 / math.sqrt(2.0 * math.log(m)) / chunks


def chunk_bounds(n: int, lanes: int, chunks: int) -> list[tuple[int, int]]:
    """Element ranges [start, stop) of the K range-BN chunks of one channel of n elements.

    Chunks are made of whole beats (L lanes): with B = ceil(n / L) beats, chunk k holds beats
    floor(k*B/K) .. floor((k+1)*B/K) - 1. Only the last beat of the channel can be short.
    """
    beats = -(-n // lanes)
    out = []
    for k in range(chunks):
        b0, b1 = (k * beats) // chunks, ((k + 1) * beats) // chunks
        out.append((b0 * lanes, min(n, b1 * lanes)))
    return out
