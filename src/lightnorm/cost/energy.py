"""Off-chip memory energy of one BN layer in training (docs/energy.md).

Dataflow (docs/numerics.md sections 8 and 9, the same as :meth:`Spec.offchip_bytes_per_element`):

* forward: read x twice (statistics pass, normalize pass), write y;
* backward: read x and dy twice (reduction pass, dx pass), write dx.

Bits of one transfer of a tensor of shape (N, C, H, W), per channel of ``n = N*H*W`` elements:

* FP(e, m) storage: ``n * (1 + e + m)`` bits;
* BFP(g, m, e_s) storage: ``ceil(n / g)`` blocks of ``g * (1 + m) + e_s`` bits - the last block
  of a channel is padded with zeros to ``g`` elements and its padding is stored and moved.

The bit count is exact by default (a bytes figure may be fractional). With ``burst_bytes = B``,
each channel of each tensor transfer (one contiguous stream, channel-major order) is rounded up
to whole bursts of ``B`` bytes - the granularity a DRAM controller really moves.

Energy = bytes x (DRAM energy per byte + SRAM energy per byte x SRAM accesses per byte): every
byte that crosses the chip boundary is also written into and read out of an on-chip staging
buffer once (2 accesses). Per-channel scalars (gamma, beta, running statistics: O(C) values)
are not counted, as in ``Spec.offchip_bytes_per_element``.

Default energies (45 nm, Horowitz, ISSCC 2014; cited in docs/energy.md) - override them for
another node or memory technology.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lightnorm.spec import Spec, SpecError, StorageFormat

#: pJ per byte read from or written to off-chip DRAM: 640 pJ per 32-bit access, 45 nm (Horowitz,
#: ISSCC 2014, as tabulated by Han et al. 2015); Horowitz gives 1.3-2.6 nJ per 64-bit access, of
#: which this is the low end.
DRAM_PJ_PER_BYTE = 160.0
#: pJ per byte per access of an 8 KB on-chip SRAM: 5 pJ per 32-bit access (10 pJ per 64 bits),
#: 45 nm (same sources).
SRAM_PJ_PER_BYTE = 1.25
#: SRAM accesses per byte moved: written into the staging buffer, read out of it.
SRAM_ACCESSES_PER_BYTE = 2

#: (tensor role, number of transfers) per pass - docs/numerics.md sections 8 and 9.
DATAFLOW: dict[str, tuple[tuple[str, int], ...]] = {
    "forward": (("x", 2), ("y", 1)),
    "backward": (("x", 2), ("dy", 2), ("dx", 1)),
}
PASSES = tuple(DATAFLOW)


def _check_shape(shape: Any) -> tuple[int, int, int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 4 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                 for d in dims):
        raise SpecError("shape", shape, "four positive integers (N, C, H, W)")
    return dims  # type: ignore[return-value]


def _check_energy(name: str, value: Any, unit: str = "pJ") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0:
        raise SpecError(name, value, f"a finite number >= 0 ({unit})")
    return float(value)


def channel_bits(fmt: StorageFormat, n: int) -> int:
    """Exact bits of one channel of ``n`` elements stored in ``fmt`` (padding of the last block
    included)."""
    return fmt.block_count(n) * (fmt.block * fmt.element_width + fmt.shared_exp_width)


def layer_traffic_bits(spec: Spec, shape: Any) -> dict[str, dict[str, int]]:
    """Exact bits moved per pass and tensor: ``{"forward": {"x": .., "y": ..}, "backward": ..}``.

    Each entry counts all transfers of that tensor in that pass (x twice, ...), all channels.
    """
    n_, c, h, w = _check_shape(shape)
    n = n_ * h * w
    roles = spec.storage.roles()
    return {
        p: {role: times * c * channel_bits(roles[role], n) for role, times in DATAFLOW[p]}
        for p in PASSES
    }


#: streaming passes over a channel's beats in each pass of the layer (docs/rtl.md
#: "Throughput": a reduction pass and an elementwise pass, one beat per cycle each)
BEAT_PASSES = 2


def datapath_at_channel_length(
    power_mw: Mapping[str, float],
    clock_ns: float,
    cycles_per_element: Mapping[str, float],
    workload_shape: Any,
    lanes: int,
    elements_per_channel: int,
) -> dict[str, Any]:
    """The datapath's energy per element of each pass for channels of ``elements_per_channel``
    elements, from a synthesis measured (or estimated) on ``workload_shape`` (its power per
    pass at ``clock_ns`` and its cycles per element).

    A channel takes ``BEAT_PASSES`` streams of its beats (``ceil(n / lanes)``, one per cycle)
    plus a fixed overhead (the finalize program, the pipelines' fill and drain, the
    handshakes): the overhead is what the measured cycles leave after the workload's beats;
    a cycle costs the measured pass's average energy. Per element, the overhead weighs less on
    a long channel than on the short ones a simulation can afford, so the workload's figure
    is not the layer's."""
    n_, c_w, h, w = _check_shape(workload_shape)
    n_w = n_ * h * w
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise SpecError("lanes", lanes, "a positive integer")
    if isinstance(elements_per_channel, bool) or not isinstance(elements_per_channel, int) \
            or elements_per_channel < 1:
        raise SpecError("elements_per_channel", elements_per_channel, "a positive integer")
    clk = _check_energy("clock_ns", clock_ns, "ns")
    beats_w = -(-n_w // lanes)
    beats = -(-elements_per_channel // lanes)
    out: dict[str, Any] = {"pj_per_element": {}, "overhead_cycles_per_channel": {},
                           "cycles_per_channel": {}}
    for p in PASSES:
        per_channel = _check_energy(f"cycles_per_element[{p!r}]", cycles_per_element[p],
                                    "cycles") * n_w
        overhead = per_channel - BEAT_PASSES * beats_w
        if overhead < -1e-9 * per_channel:  # (a cycles-per-element figure's rounding)
            raise SpecError(f"cycles_per_element[{p!r}]", cycles_per_element[p],
                            f"at least {BEAT_PASSES} beats of {lanes} lanes per channel of "
                            f"{n_w} elements ({BEAT_PASSES * beats_w / n_w:.6g} per element)")
        overhead = max(0.0, overhead)
        cycles = BEAT_PASSES * beats + overhead
        out["overhead_cycles_per_channel"][p] = overhead
        out["cycles_per_channel"][p] = cycles
        out["pj_per_element"][p] = (_check_energy(f"power_mw[{p!r}]", power_mw[p], "mW") * clk
                                    * cycles / elements_per_channel)
    out["workload"] = {"channels": c_w, "elements_per_channel": n_w}
    return out


@dataclass(frozen=True)
class LayerEnergy:
    """Off-chip traffic and energy of one BN layer (forward + backward) for one shape."""

    spec: str
    shape: tuple[int, int, int, int]
    elements: int
    elements_per_channel: int
    #: bytes of ONE transfer of each tensor (x, y, dy, dx), burst rounding applied if any
    tensor_bytes: dict[str, float]
    bytes_forward: float
    bytes_backward: float
    bytes_total: float
    # the parameters the energies were computed with
    dram_pj_per_byte: float
    sram_pj_per_byte: float
    sram_accesses_per_byte: int
    burst_bytes: int | None
    dram_pj_forward: float
    dram_pj_backward: float
    sram_pj_forward: float
    sram_pj_backward: float
    memory_pj_forward: float
    memory_pj_backward: float
    memory_pj: float
    #: datapath energy; None when no datapath figure was given
    datapath_pj_forward: float | None
    datapath_pj_backward: float | None
    datapath_pj: float | None
    #: memory + datapath; None when the datapath figure (for that pass) was not given
    total_pj_forward: float | None
    total_pj_backward: float | None
    total_pj: float | None

    @property
    def memory_pj_per_element(self) -> float:
        return self.memory_pj / self.elements

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["memory_pj_per_element"] = self.memory_pj_per_element
        return d


def layer_energy(
    spec: Spec,
    shape: Any,
    datapath_pj_per_element: float | Mapping[str, float] | None = None,
    dram_pj_per_byte: float = DRAM_PJ_PER_BYTE,
    sram_pj_per_byte: float = SRAM_PJ_PER_BYTE,
    *,
    sram_accesses_per_byte: int = SRAM_ACCESSES_PER_BYTE,
    burst_bytes: int | None = None,
) -> LayerEnergy:
    """Bytes moved and energy of one BN layer of ``shape = (N, C, H, W)`` in training.

    ``datapath_pj_per_element``: the datapath's energy per element - one number for the whole
    layer (forward + backward), or ``{"forward": .., "backward": ..}`` per pass (e.g. from
    OpenSTA power x cycles x clock period / elements). When given, the totals add it to the
    memory energy. ``burst_bytes``: round each channel of each transfer up to whole bursts
    (default: exact bits).
    """
    n_, c, h, w = _check_shape(shape)
    n = n_ * h * w
    dram = _check_energy("dram_pj_per_byte", dram_pj_per_byte)
    sram = _check_energy("sram_pj_per_byte", sram_pj_per_byte)
    if isinstance(sram_accesses_per_byte, bool) or not isinstance(sram_accesses_per_byte, int) \
            or sram_accesses_per_byte < 0:
        raise SpecError("sram_accesses_per_byte", sram_accesses_per_byte,
                        "an integer >= 0")
    if burst_bytes is not None and (isinstance(burst_bytes, bool) or
                                    not isinstance(burst_bytes, int) or burst_bytes < 1):
        raise SpecError("burst_bytes", burst_bytes, "a positive integer (bytes) or None")

    def transfer_bytes(fmt: StorageFormat) -> float:
        bits = channel_bits(fmt, n)
        if burst_bytes is None:
            return c * bits / 8
        return float(c * burst_bytes * -(-bits // (8 * burst_bytes)))

    roles = spec.storage.roles()
    tensor_bytes = {role: transfer_bytes(fmt) for role, fmt in roles.items()}
    moved = {p: float(sum(times * tensor_bytes[role] for role, times in DATAFLOW[p]))
             for p in PASSES}
    sram_per_byte = sram * sram_accesses_per_byte
    dram_e = {p: moved[p] * dram for p in PASSES}
    sram_e = {p: moved[p] * sram_per_byte for p in PASSES}
    mem = {p: dram_e[p] + sram_e[p] for p in PASSES}

    elems = n * c
    dp: dict[str, float | None] = {"forward": None, "backward": None}
    dp_total: float | None = None
    if isinstance(datapath_pj_per_element, Mapping):
        keys = set(datapath_pj_per_element)
        if keys != set(PASSES):
            raise SpecError("datapath_pj_per_element", dict(datapath_pj_per_element),
                            "a number or a mapping with exactly the keys 'forward' and "
                            "'backward'")
        for p in PASSES:
            dp[p] = _check_energy(f"datapath_pj_per_element[{p!r}]",
                                  datapath_pj_per_element[p]) * elems
        dp_total = float(dp["forward"]) + float(dp["backward"])  # type: ignore[arg-type]
    elif datapath_pj_per_element is not None:
        dp_total = _check_energy("datapath_pj_per_element", datapath_pj_per_element) * elems

    def plus(a: float, b: float | None) -> float | None:
        return None if b is None else a + b

    memory_total = mem["forward"] + mem["backward"]
    return LayerEnergy(
        spec=spec.name,
        shape=(n_, c, h, w),
        elements=elems,
        elements_per_channel=n,
        tensor_bytes=tensor_bytes,
        bytes_forward=moved["forward"],
        bytes_backward=moved["backward"],
        bytes_total=moved["forward"] + moved["backward"],
        dram_pj_per_byte=dram,
        sram_pj_per_byte=sram,
        sram_accesses_per_byte=sram_accesses_per_byte,
        burst_bytes=burst_bytes,
        dram_pj_forward=dram_e["forward"],
        dram_pj_backward=dram_e["backward"],
        sram_pj_forward=sram_e["forward"],
        sram_pj_backward=sram_e["backward"],
        memory_pj_forward=mem["forward"],
        memory_pj_backward=mem["backward"],
        memory_pj=memory_total,
        datapath_pj_forward=dp["forward"],
        datapath_pj_backward=dp["backward"],
        datapath_pj=dp_total,
        total_pj_forward=plus(mem["forward"], dp["forward"]),
        total_pj_backward=plus(mem["backward"], dp["backward"]),
        total_pj=plus(memory_total, dp_total),
    )
