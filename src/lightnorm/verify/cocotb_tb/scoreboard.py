"""Bulk scoreboard: what the harness monitors captured in one run vs the expected patterns.

The expected patterns are computed by the host from the golden model
(:func:`lightnorm.verify.cosim.prepare_runs`) and stored per run in ``expect.npz``:

``bits`` (beats, lanes) element patterns in beat order (lanes outside the channel: 0),
``exp`` (beats,) shared exponent fields (FP storage: 0), ``last`` (beats,) last beat of a
channel, ``chan``/``elem0`` (beats,) channel and index of the beat's lane 0, ``inside``
(beats, lanes) lane holds a real element, ``pc`` (channels, 9) per-channel results,
``pc_check`` (9,) which of them this pass produces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .hexio import unpack_words

PC_FIELDS = ("mean", "disp", "inv_sigma", "scale", "shift", "run_mean", "run_disp", "dgamma",
             "dbeta")
MAX_REPORTED = 10


def _hex(v: int, width: int) -> str:
    return f"0x{int(v):0{max(1, -(-width // 4))}x}"


class Scoreboard:
    """Compares one run; ``check()`` returns a JSON-able summary."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.dir = Path(run["dir"])
        self.first: list[dict[str, Any]] = []
        self.mismatches = 0
        self.elements = 0

    def _report(self, tensor: str, index: list[int], exp: int, got: int, width: int) -> None:
        if len(self.first) < MAX_REPORTED:
            self.first.append({"tensor": tensor, "index": index, "expected": _hex(exp, width),
                               "got": _hex(got, width)})

    def _stream(self, ex: dict[str, np.ndarray]) -> None:
        r = self.run
        name, lanes, ew, xw = r["out"], r["lanes"], r["ew"], r["xw"]
        path = self.dir / f"{name}.out.hex"
        text = path.read_text() if path.exists() else ""
        fields = unpack_words(text, [ew] * lanes + [xw, 1])
        got_bits = np.stack(fields[:lanes], axis=1) if lanes else np.zeros((0, 0), np.uint64)
        got_exp, got_last = fields[lanes], fields[lanes + 1]
        exp_bits, exp_exp, exp_last = ex["bits"], ex["exp"], ex["last"]
        nexp, ngot = exp_bits.shape[0], got_bits.shape[0]
        self.elements += int(ex["inside"].sum())
        if ngot != nexp:
            self.mismatches += abs(ngot - nexp) * lanes
            self._report(f"{name}_beats", [], nexp, ngot, 32)
        k = min(ngot, nexp)
        chan, elem0 = ex["chan"], ex["elem0"]
        bad = np.argwhere(got_bits[:k] != exp_bits[:k])
        self.mismatches += len(bad)
        for b, j in bad[:MAX_REPORTED]:
            self._report(name, [int(chan[b]), int(elem0[b] + j)], exp_bits[b, j],
                         got_bits[b, j], ew)
        if r["shared_exp"]:
            bad_e = np.nonzero(got_exp[:k] != exp_exp[:k])[0]
            self.mismatches += len(bad_e)
            for b in bad_e[:MAX_REPORTED]:
                self._report(f"{name}_exp", [int(chan[b]), int(elem0[b] // r["block"])],
                             exp_exp[b], got_exp[b], xw)
        bad_l = np.nonzero(got_last[:k] != exp_last[:k])[0]
        self.mismatches += len(bad_l)
        for b in bad_l[:MAX_REPORTED]:
            self._report(f"{name}_last", [int(chan[b]), int(elem0[b])], exp_last[b],
                         got_last[b], 1)

    def _per_channel(self, ex: dict[str, np.ndarray]) -> None:
        sw = self.run["sw"]
        path = self.dir / "pc.out.hex"
        text = path.read_text() if path.exists() else ""
        got = np.stack(unpack_words(text, [sw] * len(PC_FIELDS)), axis=1)
        exp, check = ex["pc"], ex["pc_check"].astype(bool)
        self.elements += int(exp.shape[0] * check.sum())
        if got.shape[0] != exp.shape[0]:
            self.mismatches += abs(got.shape[0] - exp.shape[0]) * int(check.sum())
            self._report("pc_out_count", [], exp.shape[0], got.shape[0], 32)
        k = min(got.shape[0], exp.shape[0])
        diff = (got[:k] != exp[:k]) & check[None, :]
        bad = np.argwhere(diff)
        self.mismatches += len(bad)
        for c, f in bad[:MAX_REPORTED]:
            self._report(PC_FIELDS[f], [int(c)], exp[c, f], got[c, f], sw)

    def check(self) -> dict[str, Any]:
        with np.load(self.dir / "expect.npz") as z:
            ex = {k: z[k] for k in z.files}
        self._stream(ex)
        self._per_channel(ex)
        return {"elements": self.elements, "mismatches": self.mismatches,
                "first_mismatches": self.first}
