"""Wide words <-> ``$readmemh`` / ``$writememh`` text, vectorized with NumPy.

A word is a concatenation of fields, field 0 in the least significant bits (Verilog
``{field_k, ..., field_1, field_0}``). Fields are at most 64 bits wide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack_words(fields: Sequence[tuple[np.ndarray, int]], nwords: int) -> str:
    """Hex text, one word per line, of ``nwords`` words made of (values, width) fields."""
    total = sum(w for _, w in fields)
    if nwords == 0:
        return ""
    nbits = -(-total // 8) * 8
    bits = np.zeros((nwords, nbits), np.uint8)  # least significant bit first
    off = 0
    for values, width in fields:
        if width > 64:
            raise ValueError("fields are at most 64 bits wide")
        a = np.ascontiguousarray(values, dtype=np.uint64).reshape(nwords)
        if width < 64 and np.any(a >> np.uint64(width)):
            raise ValueError(f"a value does not fit in its {width}-bit field")
        for k in range(width):
            bits[:, off + k] = ((a >> np.uint64(k)) & np.uint64(1)).astype(np.uint8)
        off += width
    packed = np.packbits(bits[:, ::-1], axis=1)  # most significant byte first
    text = packed.tobytes().hex()
    ndig = nbits // 4
    keep = -(-total // 4)
    cut = ndig - keep
    return "".join(text[i * ndig + cut:(i + 1) * ndig] + "\n" for i in range(nwords))


def parse_words(text: str, total: int) -> np.ndarray:
    """``$writememh`` text -> (nwords, total) bit matrix, least significant bit first."""
    lines = [ln.split("//")[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("@")]
    nbytes = -(-total // 8)
    if not lines:
        return np.zeros((0, total), np.uint8)
    digits = "".join(ln.replace("_", "").rjust(2 * nbytes, "0")[-2 * nbytes:] for ln in lines)
    if any(c in "xXzZ" for c in digits):
        raise ValueError("X or Z in a captured word")
    raw = np.frombuffer(bytes.fromhex(digits), np.uint8).reshape(len(lines), nbytes)
    bits = np.unpackbits(raw, axis=1)[:, ::-1]
    return np.ascontiguousarray(bits[:, :total])


def field(bits: np.ndarray, offset: int, width: int) -> np.ndarray:
    """One field (uint64) of every word of a bit matrix."""
    out = np.zeros(bits.shape[0], np.uint64)
    for k in range(width):
        out |= bits[:, offset + k].astype(np.uint64) << np.uint64(k)
    return out


def unpack_words(text: str, widths: Sequence[int]) -> list[np.ndarray]:
    """Fields of every word of ``$writememh`` text (field 0 in the low bits)."""
    bits = parse_words(text, sum(widths))
    out, off = [], 0
    for w in widths:
        out.append(field(bits, off, w))
        off += w
    return out
