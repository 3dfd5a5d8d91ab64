"""Render the spec schema as Markdown (docs/spec.md): ``python -m lightnorm.spec.doc``."""

from __future__ import annotations

import sys

from .accelerator import BNConfig, HWConfig
from .formats import FAMILIES, FPFormat
from .schema import describe_fields

SECTIONS = [
    ("top level", None, "`name` (required) and `description`."),
    ("[bn]", BNConfig, "normalization"),
    ("[hw]", HWConfig, "hardware shape and target"),
    *((fam.doc_title, fam, fam.doc_what) for fam in FAMILIES.values()),
    ("[compute], [accum], [scalar]", FPFormat,
     "per-lane arithmetic, accumulators, per-channel scalars (FP formats)"),
]


def render() -> str:
    out = [
        "# Spec reference",
        "",
        "Generated from the declared schema by `python -m lightnorm.spec.doc` (a test checks it",
        "is current). Unknown keys and missing required fields are errors; every error names the",
        "dotted field, the value and what is allowed. Cross-field rules: a BFP block is a",
        "multiple of `hw.lanes`; standard BN has `bn.chunks = 1`; `hw.max_channel_elems` is at",
        "least `max(2K, (K-1)L + 1)`; `bn.eps`, `bn.momentum` and `1/hw.max_channel_elems` must",
        "not flush to zero in the scalar format. See docs/numerics.md for what each format does.",
        "",
    ]
    for title, cls, what in SECTIONS:
        out += [f"## {title}", "", what, ""]
        if cls is None:
            continue
        out += ["| field | allowed | meaning |", "| --- | --- | --- |"]
        for name, allowed, doc in describe_fields(cls):
            out.append(f"| `{name}` | {allowed} | {doc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
