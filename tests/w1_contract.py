"""Golden-model outputs under the sequential-accumulation contract, before ``hw.accum_ways``.

Until ``hw.accum_ways`` existed, every channel sum and the range-BN chunk averages were one
sequential ``acc = add_A(acc, t)`` (docs/numerics.md section 6 at commit 099927b). With W = 1 the
W-way rule is exactly that contract; ``tests/data/w1_contract.npz`` holds what the golden model
of commit 099927b computed on :data:`CASES`, and tests/test_golden.py checks that the current
model with ``accum_ways = 1`` gives the same bits (and that W = 4 does not, on these cases).

Regenerate only from a checkout of that commit (the point is to keep its bits)::

    PYTHONPATH=<checkout of 099927b>/src python -m tests.w1_contract tests/data/w1_contract.npz
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import numpy as np

from lightnorm.spec import Spec, from_dict, load
from lightnorm.verify import golden

SOURCE_COMMIT = "099927b"

_FP = {"kind": "fp"}


def _fp(e: int, m: int, rnd: str = "nearest") -> dict[str, Any]:
    return {"exp_bits": e, "man_bits": m, "rounding": rnd}


#: (name, preset or spec table, NCHW shape); tables carry no accum_ways (the old schema)
CASES: list[tuple[str, str | dict[str, Any], tuple[int, int, int, int]]] = [
    ("lightnorm", "lightnorm", (1, 3, 10, 15)),
    ("lightnorm-aggressive", "lightnorm-aggressive", (1, 3, 10, 15)),
    ("fp32-baseline", "fp32-baseline", (1, 3, 10, 15)),
    ("bf16-standard", "bf16-standard", (1, 3, 10, 15)),
    ("fp-range-l1-k5", {
        "name": "w1-a", "bn": {"mode": "range", "chunks": 5},
        "hw": {"lanes": 1, "max_channel_elems": 4096},
        "storage": {"x": {**_FP, **_fp(5, 6)}, "y": {**_FP, **_fp(5, 4, "truncate")},
                    "dy": {**_FP, **_fp(5, 6)}, "dx": {**_FP, **_fp(5, 5)}},
        "compute": _fp(6, 7), "accum": _fp(6, 8, "truncate"), "scalar": _fp(8, 12),
    }, (2, 3, 5, 7)),
    ("fp-standard-l2", {
        "name": "w1-b", "bn": {"mode": "standard"},
        "hw": {"lanes": 2, "max_channel_elems": 4096},
        "storage": {"x": {**_FP, **_fp(5, 10)}, "y": {**_FP, **_fp(5, 10)},
                    "dy": {**_FP, **_fp(5, 10)}, "dx": {**_FP, **_fp(5, 10)}},
        "compute": _fp(5, 10), "accum": _fp(5, 9), "scalar": _fp(8, 10, "truncate"),
    }, (3, 3, 4, 5)),
    ("bfp-standard-l4", {
        "name": "w1-c", "bn": {"mode": "standard"},
        "hw": {"lanes": 4, "max_channel_elems": 4096},
        "storage": {r: {"kind": "bfp", "block": 8, "man_bits": 6, "exp_bits": 6,
                        "carry": "raise"} for r in ("x", "y", "dy", "dx")},
        "compute": _fp(6, 9), "accum": _fp(7, 7), "scalar": _fp(8, 15),
    }, (1, 3, 9, 11)),
    ("bfp-range-l2-k3", {
        "name": "w1-d", "bn": {"mode": "range", "chunks": 3},
        "hw": {"lanes": 2, "max_channel_elems": 4096},
        "storage": {"x": {"kind": "bfp", "block": 4, "man_bits": 5, "exp_bits": 5},
                    "y": {**_FP, **_fp(5, 6)},
                    "dy": {"kind": "bfp", "block": 2, "man_bits": 7, "exp_bits": 6,
                           "rounding": "truncate"},
                    "dx": {**_FP, **_fp(6, 6)}},
        "compute": _fp(6, 8), "accum": _fp(6, 6), "scalar": _fp(8, 12),
    }, (2, 3, 7, 9)),
]


def case_spec(source: str | dict[str, Any], accum_ways: int | None = None) -> Spec:
    """The spec of a case; ``accum_ways`` set explicitly when given (the new schema)."""
    if isinstance(source, str):
        spec = load(source)
        if accum_ways is None:
            return spec
        table = spec.to_dict()
    else:
        table = copy.deepcopy(source)
    if accum_ways is not None:
        table["hw"]["accum_ways"] = accum_ways
    return from_dict(table)


def case_inputs(i: int, shape: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
    """Inputs of case ``i`` (float32 values, so the file stays small; exact in float64). The
    file keeps them: the test reads them from there, not from a random generator whose stream
    a NumPy release may change."""
    rng = np.random.default_rng(1000 + i)
    c = shape[1]
    scale = 2.0 ** rng.integers(-3, 4, (1, c, 1, 1))
    x = rng.normal(0.3, 1.7, shape) * scale
    x[:, 0] = np.round(x[:, 0] * 4) / 4  # coarse values: ties between chunk extremes
    return {
        "x": x.astype(np.float32),
        "dy": rng.normal(0.0, 0.05, shape).astype(np.float32),
        "gamma": rng.uniform(0.5, 1.5, c).astype(np.float32),
        "beta": rng.uniform(-0.5, 0.5, c).astype(np.float32),
    }


def outputs(spec: Spec, inp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every pattern the golden model produces for the inputs (forward and backward), and the
    raw accumulator values (A values as float64, exact)."""
    x, dy = (inp[k].astype(np.float64) for k in ("x", "dy"))
    g, b = (inp[k].astype(np.float64) for k in ("gamma", "beta"))
    fr = golden.forward(spec, x, g, b)
    br = golden.backward(spec, x, dy, g, b, saved=fr)
    out = {
        "y_bits": fr.y_enc.bits, "dx_bits": br.dx_enc.bits,
        "raw": fr.stats.raw,
        "mean": fr.mean_bits, "disp": fr.dispersion_bits, "inv_sigma": fr.inv_sigma_bits,
        "scale": fr.scale_bits, "shift": fr.shift_bits,
        "running_mean": fr._b(fr.running_mean),
        "running_disp": fr._b(fr.running_var if fr.running_var is not None
                              else fr.running_sigma),  # type: ignore[arg-type]
        "dgamma": br.dgamma_bits, "dbeta": br.dbeta_bits,
    }
    if fr.y_enc.exps is not None:
        out["y_exps"] = fr.y_enc.exps
    if br.dx_enc.exps is not None:
        out["dx_exps"] = br.dx_enc.exps
    return {k: np.asarray(v) for k, v in out.items()}


def main(path: str) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, (name, source, shape) in enumerate(CASES):
        inp = case_inputs(i, shape)
        for k, v in inp.items():
            arrays[f"{name}/in_{k}"] = v
        for k, v in outputs(case_spec(source), inp).items():
            arrays[f"{name}/{k}"] = v
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
