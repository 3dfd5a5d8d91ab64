"""Estimates against synthesis (issue 18, docs/estimate.md): ``lightnorm estimate`` next to
``lightnorm synth`` on every preset and on random specs the calibration never saw.

    lightnorm bench estimate [--presets LIST] [--held-out N | --seeds LIST] [--fresh [LIST]]
                             [--calibration] [--fit] [--cross-validate] [--json]
                             [--records FILE] [--save-records FILE]

Per spec and figure (area, each block's area, Fmax, forward and backward energy per element):
the estimate, the synthesized figure and the relative error, then the largest error per figure.
Random specs come from :func:`random_spec` with fixed seeds: the held-out seeds
(:data:`HELD_OUT_SEEDS`) never took part in the calibration (:data:`CALIBRATION_SEEDS` did,
with the presets); the fresh seeds (:data:`FRESH_SEEDS`) were not looked at before the model
was frozen. A first run synthesizes every spec (minutes each on 2 cores; cached after).
``--save-records`` writes the synthesis results of the run's specs to a file, ``--records``
reads such a file into the synthesis cache first: a result is used only under the key
today's code computes for its spec (:func:`lightnorm.cost.synth.import_results`), so
calibrating and validating again on another machine synthesizes no whole design while the
generator, the synthesis scripts and the tools are the same (the operator and module libraries
are still characterized), and re-synthesizes what they changed.
"""

from __future__ import annotations

import random
from typing import Any

from lightnorm.errors import UsageError

from . import seed_list

#: the random specs the calibration of :mod:`lightnorm.cost.estimate` is fitted on (with the
#: presets): 100-121 but those not synthesized in the first calibration's time (103-105, of 16
#: and 32 lanes; 110, 111, 113, 115, 119); 200-231, the held-out and fresh specs of the first
#: model, whose errors were all seen while the energy model's data rates were chosen; and
#: 232-255, the held-out specs of the data-rate model (8cafdc9), seen while its BN-mode term
#: was chosen (docs/estimate.md)
CALIBRATION_SEEDS = (100, 101, 102, 106, 107, 108, 109, 112, 114, 116, 117, 118, 120, 121,
                     *range(200, 256))
#: the random specs held out of the calibration: synthesized before a model was frozen and
#: compared with it only after (docs/estimate.md): 256-271 with d1af96c, 272-287 with
#: 223db87, 288-303 with dd5737c, 304-319 with dd5737c's constants on the generator that
#: registers the extrema's keys, 320-335 with 477792a's refit, 336-351 with 91fd897's busy
#: fraction (each the fresh seeds of its day)
HELD_OUT_SEEDS = tuple(range(256, 352))
#: random specs for the next model's validation: not looked at
FRESH_SEEDS = tuple(range(352, 368))
LANES = (1, 2, 4, 8, 16, 32)
CLOCKS = (4.0, 5.0, 7.0, 10.0)


def _fp(rng: random.Random, e: tuple[int, int], m: tuple[int, int]) -> dict[str, Any]:
    return {"exp_bits": rng.randint(*e), "man_bits": rng.randint(*m),
            "rounding": rng.choice(("nearest", "truncate"))}


def _storage(rng: random.Random, kind: str, lanes: int) -> dict[str, Any]:
    if kind == "fp":
        return {"kind": "fp", **_fp(rng, (4, 8), (2, 15))}
    if kind == "mx":
        return {"kind": "mx", "element": rng.choice(("fp8_e4m3", "fp8_e5m2", "fp6_e3m2",
                                                       "fp6_e2m3", "fp4_e2m1", "int8")),
                "block": 32 if lanes <= 32 else lanes}
    return {"kind": "bfp", "block": lanes * rng.choice((1, 2, 4)) if lanes < 32 else lanes,
            "man_bits": rng.randint(3, 10), "exp_bits": rng.randint(5, 8),
            "rounding": rng.choice(("nearest", "truncate")),
            "carry": rng.choice(("saturate", "renormalize"))}


def random_table(seed: int) -> dict[str, Any]:
    """A random valid spec table: lanes 1 to 32 (mostly few: they synthesize fast), every
    storage family, both BN modes, several clocks; the same seed gives the same table."""
    rng = random.Random(seed)
    lanes = rng.choices(LANES, weights=(3, 3, 3, 2, 1, 1))[0]
    mode = rng.choice(("standard", "range"))
    kind_xy = rng.choice(("fp", "bfp", "mx"))
    kind_d = rng.choice(("fp", "bfp", "mx"))
    x = _storage(rng, kind_xy, lanes)
    dy = _storage(rng, kind_d, lanes)
    y = x if rng.random() < 0.7 else _storage(rng, kind_xy, lanes)
    dx = dy if rng.random() < 0.7 else _storage(rng, kind_d, lanes)
    return {
        "name": f"rnd-{seed}",
        "bn": {"mode": mode, "chunks": rng.choice((1, 2, 4, 8)) if mode == "range" else 1},
        "hw": {"lanes": lanes, "max_channel_elems": rng.choice((4096, 65536, 1048576)),
               "accum_ways": rng.choice((1, 2, 4, 8)), "clock_ns": rng.choice(CLOCKS)},
        "storage": {"x": x, "y": y, "dy": dy, "dx": dx},
        "compute": _fp(rng, (5, 8), (5, 15)), "accum": _fp(rng, (6, 8), (10, 23)),
        "scalar": _fp(rng, (6, 8), (10, 23)),
    }


def random_spec(seed: int) -> Any:
    """The :class:`~lightnorm.spec.Spec` of :func:`random_table` (the next seed up when a
    table is not valid: ``seed * 1000 + k``)."""
    from lightnorm.spec import SpecError, from_dict

    for k in range(100):
        try:
            spec = from_dict(random_table(seed * 1000 + k if k else seed))
            return spec
        except SpecError:
            continue
    raise RuntimeError(f"no valid random spec from seed {seed}")


#: the figures compared, as (column, how to read it from an estimate or a synthesis result)
FIGURES = {
    "area": lambda r: r.area_um2,
    "fmax": lambda r: r.fmax_mhz,
    "e_fwd": lambda r: r.energy_pj_per_element["forward"],
    "e_bwd": lambda r: r.energy_pj_per_element["backward"],
}
#: the issue's target: every figure within 10 % of synthesis
TOLERANCE = 0.10


def add_arguments(parser: Any) -> None:
    parser.add_argument("--presets", default=None, metavar="LIST",
                        help="comma-separated presets (default: every preset)")
    parser.add_argument("--held-out", type=int, default=len(HELD_OUT_SEEDS), metavar="N",
                        help=f"the first N held-out random specs (default {len(HELD_OUT_SEEDS)})")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="LIST",
                        help="held-out seeds instead of the first N (comma-separated seeds or "
                             "ranges: 256-259)")
    parser.add_argument("--fresh", nargs="?", type=seed_list, const=(), default=None,
                        metavar="LIST",
                        help=f"also the fresh random specs (seeds {FRESH_SEEDS[0]}-"
                             f"{FRESH_SEEDS[-1]}, or those of LIST)")
    parser.add_argument("--calibration", action="store_true",
                        help="also list the calibration's random specs")
    parser.add_argument("--fit", action="store_true",
                        help="fit the calibration on the presets and the calibration specs and "
                             "print it (the constants of lightnorm.cost.estimate.CALIBRATION)")
    parser.add_argument("--cross-validate", action="store_true",
                        help="leave-one-out error of the energy model over the presets and the "
                             "calibration specs, with and without its data-rate terms")
    parser.add_argument("--json", action="store_true", help="rows as JSON")
    parser.add_argument("--records", default=None, metavar="FILE",
                        help="synthesis results saved by --save-records: each one still valid "
                             "for today's code is used instead of synthesizing its spec")
    parser.add_argument("--save-records", default=None, metavar="FILE",
                        help="write the synthesis results of every spec of this run to FILE")


#: what a records file says it is (``--save-records``)
RECORDS_FORMAT = "lightnorm synthesis results"
RECORDS_VERSION = 1


def read_records(path: str) -> list[dict[str, Any]]:
    """The results of a records file (:data:`RECORDS_FORMAT`); a file that is not one is a
    :class:`~lightnorm.errors.UsageError` naming it."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"--records {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--records {path}: not JSON ({exc})") from None
    if not (isinstance(data, dict) and data.get("format") == RECORDS_FORMAT
            and data.get("version") == RECORDS_VERSION and isinstance(data.get("results"), list)):
        raise UsageError(f"--records {path}: expected a JSON object with format "
                         f"{RECORDS_FORMAT!r}, version {RECORDS_VERSION} and a list of results "
                         "(written by --save-records)")
    return data["results"]


def write_records(path: str, results: list[Any]) -> None:
    """Write synthesis results as a records file, whole or not at all."""
    import json
    from pathlib import Path

    from lightnorm.tools.cache import write_entry

    text = json.dumps({"format": RECORDS_FORMAT, "version": RECORDS_VERSION,
                       "results": [r.to_dict() for r in results]}, indent=1, allow_nan=True)
    try:
        write_entry(Path(path), text)
    except OSError as exc:
        raise UsageError(f"--save-records {path}: {exc.strerror or exc}") from None


def _specs(args: Any) -> list[tuple[str, Any]]:
    from lightnorm.spec import load, preset_names

    names = ([n.strip() for n in args.presets.split(",") if n.strip()] if args.presets
             else preset_names())
    out: list[tuple[str, Any]] = [("preset", load(n)) for n in names]
    if args.calibration or args.fit or args.cross_validate:
        out += [("calibration", random_spec(s)) for s in CALIBRATION_SEEDS]
    seeds = list(args.seeds) if args.seeds else list(HELD_OUT_SEEDS[:max(0, args.held_out)])
    bad = [s for s in seeds if s in CALIBRATION_SEEDS]
    if bad:
        raise UsageError(f"--seeds {','.join(map(str, bad))}: calibration seeds, not held out")
    out += [("held-out", random_spec(s)) for s in seeds]
    if args.fresh is not None:
        fresh = list(args.fresh) or list(FRESH_SEEDS)
        bad = [s for s in fresh if s not in FRESH_SEEDS]
        if bad:
            raise UsageError(f"--fresh {','.join(map(str, bad))}: not fresh seeds (expected "
                             f"{FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]})")
        out += [("fresh", random_spec(s)) for s in fresh if s not in seeds]
    return out


def compare(kind: str, spec: Any, cal: Any = None) -> dict[str, Any]:
    """One spec's row: estimate and synthesis (run unless cached) of every figure and block,
    and the estimate's time once the module library holds the spec's modules."""
    import time

    from lightnorm.codegen.rtl import _timing_plan
    from lightnorm.cost.estimate import estimate, measured

    m = measured(spec)
    estimate(spec, calibration=cal)  # the module library holds its modules from here on
    _timing_plan.cache_clear()
    t0 = time.perf_counter()
    est = estimate(spec, calibration=cal)
    secs = time.perf_counter() - t0
    res = m.result
    row: dict[str, Any] = {"spec": spec.name, "set": kind, "lanes": spec.hw.lanes,
                           "mode": spec.bn.mode, "clock_ns": spec.hw.clock_ns,
                           "estimate_seconds": secs}
    for k, get in FIGURES.items():
        e, s = float(get(est)), float(get(res))
        row[k] = {"estimate": e, "synth": s, "error": (e - s) / s if s else None}
    row["blocks"] = {b: {"estimate": est.area_breakdown[b], "synth": s,
                         "error": (est.area_breakdown[b] - s) / s if s else None}
                     for b, s in res.area_breakdown.items()}
    row["cycles"] = {p: {"estimate": est.cycles_per_element[p],
                         "synth": res.cycles_per_element[p]} for p in est.cycles_per_element}
    return row


def _cross_validate(specs: list[Any]) -> int:
    """Print the energy model's leave-one-out errors (docs/estimate.md)."""
    import math

    from lightnorm.cost.estimate import cross_validate_energy, measured

    data = [measured(s) for s in specs]
    print(f"leave-one-out over {len(data)} designs (presets and calibration specs), "
          "energy per cycle")
    for rated, label in ((False, "without data rates"), (True, "with data rates")):
        for p, errs in cross_validate_energy(data, rated).items():
            worst = max(range(len(errs)), key=lambda i: abs(errs[i]))
            out = [specs[i].name for i, e in enumerate(errs) if abs(e) > TOLERANCE]
            rms = math.sqrt(sum(e * e for e in errs) / len(errs))
            print(f"  {label:<19} {p:<8} rms {100 * rms:4.1f}%  largest "
                  f"{100 * abs(errs[worst]):4.1f}% ({specs[worst].name})  "
                  f"outside {100 * TOLERANCE:.0f}%: {len(out)}"
                  + (f" ({', '.join(out)})" if out else ""))
    return 0


def _measured(args: Any, specs: list[tuple[str, Any]]) -> list[Any]:
    """The specs whose synthesis this run reads: the calibration's (presets and calibration
    specs) for --fit and --cross-validate, every spec otherwise."""
    if args.fit or args.cross_validate:
        return [s for kind, s in specs if kind in ("preset", "calibration")]
    return [s for _kind, s in specs]


def execute(args: Any) -> int:
    import sys

    specs = _specs(args)
    if args.records:
        from lightnorm.cost.synth import import_results

        results = read_records(args.records)
        try:
            new = import_results(results)
        except ValueError as exc:
            raise UsageError(f"--records {args.records}: {exc}") from None
        print(f"records: {args.records}: {len(results)} results, {new} new to the cache",
              file=sys.stderr)
    status = _execute(args, specs)
    if args.save_records:
        from lightnorm.cost.synth import synthesize

        used = _measured(args, specs)
        write_records(args.save_records, [synthesize(s) for s in used])
        print(f"records: {len(used)} synthesis results written to {args.save_records}",
              file=sys.stderr)
    return status


def _execute(args: Any, specs: list[tuple[str, Any]]) -> int:
    import json

    if args.cross_validate:
        return _cross_validate(_measured(args, specs))
    if args.fit:
        from lightnorm.cost.estimate import fit, measured

        cal = fit([measured(s) for s in _measured(args, specs)])
        print(json.dumps(cal, indent=1))
        return 0
    rows = [compare(kind, s) for kind, s in specs]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'spec':<22} {'set':<11} {'lanes':>5} {'mode':<8} {'clock':>5} "
          + " ".join(f"{k:>7}" for k in FIGURES) + "  worst block  seconds")
    worst: dict[str, float] = {k: 0.0 for k in FIGURES}
    blocks: dict[str, float] = {}
    for r in rows:
        errs = [r[k]["error"] for k in FIGURES]
        for k in FIGURES:
            worst[k] = max(worst[k], abs(r[k]["error"]))
        for b, v in r["blocks"].items():
            if v["error"] is not None:
                blocks[b] = max(blocks.get(b, 0.0), abs(v["error"]))
        wb = max(((abs(v["error"]), b) for b, v in r["blocks"].items()
                  if v["error"] is not None), default=(0.0, "-"))
        print(f"{r['spec']:<22} {r['set']:<11} {r['lanes']:>5} {r['mode']:<8} "
              f"{r['clock_ns']:>5g} " + " ".join(f"{100 * e:>+6.1f}%" for e in errs)
              + f"  {wb[1]} {100 * wb[0]:.0f}%  {r['estimate_seconds']:.2f}")
    names = list(blocks)
    print(f"\narea error per block\n{'spec':<22} " + " ".join(f"{b:>10}" for b in names))
    for r in rows:
        print(f"{r['spec']:<22} " + " ".join(
            f"{100 * r['blocks'][b]['error']:>+9.1f}%" if r["blocks"].get(b, {}).get("error")
            is not None else f"{'-':>10}" for b in names))
    print("largest |error|: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in worst.items()))
    print("largest |error| per block: "
          + ", ".join(f"{b} {100 * v:.1f}%" for b, v in blocks.items()))
    ok = all(v <= TOLERANCE for v in worst.values())
    print(f"every figure within {100 * TOLERANCE:.0f}%: {'yes' if ok else 'NO'}")
    return 0
