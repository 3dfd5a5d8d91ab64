"""Everything the HLS templates print, computed from a spec in Python.

Templates only substitute: each format's view (``fmt.view``: its type name that carries its
parameters, C++ declaration, widths, biases, exponent ranges, max patterns), tree depth,
top-function ports with their interface pragmas and cosim depths, and the Vitis HLS script
settings. The C++ library (``ln_*.h``) derives the same format constants from its template
arguments; the generated config header ``static_assert``s that the two agree (each family adds
its own checks through its HLS fragment, ``fmt.fragments.hls``).
"""

from __future__ import annotations

from typing import Any

import lightnorm
from lightnorm.spec import Spec
from lightnorm.spec.formats import FAMILIES, FormatView

from .env import cident


def testbench_shape(spec: Spec) -> tuple[int, int, int, int]:
    """The NCHW shape of the default test vectors (and of the cosim port depths)."""
    lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
    n = min(hi, max(lo, 3 * spec.hw.lanes + 5, 40))
    return (1, 2, 1, n)


def _ports(spec: Spec, roles: dict[str, FormatView], pass_: str) -> list[dict[str, Any]]:
    """Top-function ports of one pass, in signature order, with pragmas and cosim depths."""
    cfg = config_name(spec)
    nb_, c_tb, h_tb, w_tb = testbench_shape(spec)
    n_tb = nb_ * h_tb * w_tb
    fmts = spec.storage.roles()
    ports: list[dict[str, Any]] = []

    def tensor(role: str, direction: str) -> None:
        t = roles[role]
        fmt = fmts[role]
        ports.append({
            "name": role, "abi": role, "array": True, "direction": direction,
            "ctype": f"{cfg}::{role}_fmt::word", "bundle": f"gmem_{role}",
            "count": f"long(C) * ln::padded_length<{cfg}::{role}_fmt>(N)",
            "depth": c_tb * fmt.padded_length(n_tb), "doc": f"{role}: {t.about}",
        })
        if fmt.shared_exp_width:
            ports.append({
                "name": f"{role}_exp", "abi": f"{role}_exp", "array": True,
                "direction": direction, "ctype": f"{cfg}::{role}_fmt::exp_word",
                "bundle": f"gmem_{role}",
                "count": f"long(C) * ln::block_count<{cfg}::{role}_fmt>(N)",
                "depth": c_tb * fmt.block_count(n_tb), "doc": f"{role}: shared exponent fields",
            })

    def per_channel(name: str, direction: str, doc: str, abi: str | None = None) -> None:
        ports.append({
            "name": name, "abi": abi or name, "array": True, "direction": direction,
            "ctype": f"{cfg}::scalar::word", "bundle": "gmem_param", "count": "C",
            "depth": c_tb, "doc": doc,
        })

    def scalar(name: str, ctype: str, source: str, doc: str) -> None:
        # arg: the call expression in the testbench and the csim shim (locals C, N, consts)
        arg = f"int({source})" if ctype == "int" else f"{ctype}({source})"
        ports.append({"name": name, "abi": source, "array": False, "direction": "in",
                      "ctype": ctype, "doc": doc, "arg": arg})

    rng = spec.bn.mode == "range"
    if pass_ == "forward":
        tensor("x", "in")
        tensor("y", "out")
        per_channel("gamma", "in", "gamma, rounded into S by the host")
        per_channel("beta", "in", "beta, rounded into S by the host")
        per_channel("mean", "out", "batch mean (kept for backward)")
        per_channel("inv_sigma", "out", "1 / sigma (kept for backward)")
        per_channel("scale", "out", "gamma * inv_sigma (kept for backward)")
        per_channel("shift", "out", "beta - mean * scale")
        per_channel("running_mean", "inout", "running mean, updated in place")
        disp = "running_sigma" if rng else "running_var"
        per_channel(disp, "inout", f"{disp.replace('_', ' ')}, updated in place",
                    abi="running_disp")
    else:
        tensor("x", "in")
        tensor("dy", "in")
        tensor("dx", "out")
        per_channel("mean", "in", "batch mean from the forward pass")
        per_channel("inv_sigma", "in", "1 / sigma from the forward pass")
        per_channel("scale", "in", "gamma * inv_sigma from the forward pass")
        per_channel("dgamma", "out", "sum(dy * x_hat), rounded into S")
        per_channel("dbeta", "out", "sum(dy), rounded into S")
    scalar("channels", "int", "C", "number of channels C")
    scalar("n", "int", "N", "elements per channel N*H*W")
    s = f"{cfg}::scalar::word"
    scalar("inv_n", s, "consts[0]", "rnd_S(1/n)")
    if rng:
        scalar("c_k", s, "consts[1]", "rnd_S(C(n/K)/K)")
    if pass_ == "forward":
        scalar("eps", s, "consts[2]", "rnd_S(eps)")
        scalar("momentum", s, "consts[3]", "rnd_S(momentum)")
        if not rng:
            scalar("unbias", s, "consts[4]", "rnd_S(n/(n-1))")
    for p in ports:
        if p["array"]:
            p["arg"] = f"{p['name']}.data()"
    return ports


def tb_arrays(fwd: list[dict[str, Any]], bwd: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every array of both passes once: loaded from a vector file, checked against one, or both.

    Backward's mean, inv_sigma and scale are the forward's outputs (what the hardware keeps).
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pass_, ports in (("forward", fwd), ("backward", bwd)):
        for p in ports:
            if not p["array"] or p["name"] in seen:
                continue
            seen.add(p["name"])
            out.append({**p, "pass": pass_, "load": p["direction"] in ("in", "inout"),
                        "expect": p["direction"] in ("out", "inout")})
    return out


def _consts_fields(spec: Spec, pass_: str) -> list[tuple[str, str]]:
    """run_consts fields set by a top function: (field, expression)."""
    rng = spec.bn.mode == "range"
    fwd = pass_ == "forward"
    return [
        ("inv_n", "inv_n"),
        ("c_k", "c_k" if rng else "0"),
        ("eps", "eps" if fwd else "0"),
        ("momentum", "momentum" if fwd else "0"),
        ("unbias", "unbias" if fwd and not rng else "0"),
    ]


def config_name(spec: Spec) -> str:
    return f"{cident(spec.ident)}_config"


def context(spec: Spec) -> dict[str, Any]:
    """The template context of a spec (plain data and the formats' views)."""
    ident = cident(spec.ident)
    fmts = {**spec.storage.roles(), "compute": spec.compute, "accum": spec.accum,
            "scalar": spec.scalar}
    roles: dict[str, FormatView] = {role: fmt.view for role, fmt in fmts.items()}
    types: dict[str, FormatView] = {}
    for t in roles.values():
        types.setdefault(t.name, t)
    lanes = spec.hw.lanes
    fwd_ports = _ports(spec, roles, "forward")
    bwd_ports = _ports(spec, roles, "backward")
    exps_arg = {r: (f"{r}_exp" if fmts[r].shared_exp_width else "0")
                for r in ("x", "y", "dy", "dx")}
    rng = spec.bn.mode == "range"
    return {
        "ident": ident,
        "name": spec.name,
        "description": spec.description,
        "spec_hash": spec.hash,
        "version": lightnorm.__version__,
        "config": config_name(spec),
        "guard": ident.upper(),
        "top_forward": f"{ident}_forward",
        "top_backward": f"{ident}_backward",
        "files": file_names(spec),
        "mode": spec.bn.mode,
        "mode_enum": "ln::RANGE_BN" if rng else "ln::STANDARD_BN",
        "running_disp": "running_sigma" if rng else "running_var",
        "lanes": lanes,
        "lanes_log2": lanes.bit_length() - 1,
        "chunks": spec.bn.chunks,
        "accum_ways": spec.hw.accum_ways,
        "exact_dot": int(spec.exact_dot),
        "centered": int(spec.bn.normalize == "centered"),
        "max_channel_elems": spec.hw.max_channel_elems,
        "min_channel_elems": spec.min_channel_elems(),
        "roles": roles,
        "types": list(types.values()),
        "exps_arg": exps_arg,
        "forward_ports": fwd_ports,
        "backward_ports": bwd_ports,
        "arrays": tb_arrays(fwd_ports, bwd_ports),
        "forward_consts": _consts_fields(spec, "forward"),
        "backward_consts": _consts_fields(spec, "backward"),
        "part": spec.hw.part,
        "clock_ns": f"{spec.hw.clock_ns:g}",
        "tb_shape": list(testbench_shape(spec)),
    }


def file_names(spec: Spec) -> dict[str, str]:
    """Output files (relative to OUT/hls) by template."""
    ident = cident(spec.ident)
    return {
        "hls/ln_ap.h.j2": "ln_ap.h",
        **library_files(),
        "hls/ln_bn.h.j2": "ln_bn.h",
        "hls/config.h.j2": f"{ident}_config.h",
        "hls/top.h.j2": f"{ident}.h",
        "hls/top.cpp.j2": f"{ident}.cpp",
        "hls/tb.cpp.j2": f"tb_{ident}.cpp",
        "hls/run_hls.tcl.j2": "run_hls.tcl",
        "hls/README.md.j2": "README.md",
    }


def library_files() -> dict[str, str]:
    """The HLS library header of each format family (the same for every spec), by template."""
    return {f"hls/{fam.fragments.hls_lib}.j2": fam.fragments.hls_lib for fam in FAMILIES.values()}
