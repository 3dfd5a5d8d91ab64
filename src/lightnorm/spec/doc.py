"""Render the spec schema as Markdown (docs/spec.md): ``python -m lightnorm.spec.doc``."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from .accelerator import NAME_MAX_LEN, BNConfig, HWConfig, Spec
from .formats import FAMILIES, FPFormat
from .schema import describe_fields

SECTIONS: list[tuple[str, type | None, str]] = [
    ("top level", Spec, "The spec's name and description, then one table per section below "
     "(every section is required)."),
    ("[bn]", BNConfig, "normalization"),
    ("[hw]", HWConfig, "hardware shape and target"),
    *((fam.doc_title, fam, fam.doc_what) for fam in FAMILIES.values()),
    ("[compute], [accum], [scalar]", FPFormat,
     "per-lane arithmetic, accumulators, per-channel scalars (FP formats)"),
]


def _default(f: dataclasses.Field[Any]) -> str:
    """``required``, or the value a field takes when the spec leaves it out."""
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    value = f.default
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


def render() -> str:
    out = [
        "# Spec reference",
        "",
        "Generated from the declared schema by `python -m lightnorm.spec.doc` (a test checks it",
        "is current). Unknown keys and missing required fields are errors; every error names the",
        "dotted field, the value and what is allowed. A field marked `required` must be given;",
        "any other field may be left out and takes the default shown. Cross-field rules: a BFP",
        "block is a multiple of `hw.lanes`; standard BN has `bn.chunks = 1`;",
        "`hw.max_channel_elems` is at least `max(2K, (K-1)L + 1)`; `bn.eps`, `bn.momentum` and",
        "`1/hw.max_channel_elems` must not flush to zero in the scalar format. See",
        "docs/numerics.md for what each format does.",
        "",
        f"Names: `name` is at most {NAME_MAX_LEN} characters of lowercase letters, digits, `_` and",
        "`-`, starting with a letter. It becomes file names and (with `-` as `_`) C++ identifiers",
        "of the generated design, so a name is rejected when it ends with `-` or `_`, holds two",
        "of them in a row, starts with `ln_`, `ap_`, `hls_` or `x_hls_` (the library headers'",
        "prefixes), or is a C/C++/POSIX header name (`math`, `stdint`...), a C++, Verilog or DSLX",
        "keyword, or a DSLX integer type (`u8`): the list is in `lightnorm/spec/names.py`.",
        "",
    ]
    for title, cls, what in SECTIONS:
        out += [f"## {title}", "", what, ""]
        if cls is None:
            continue
        fields = {f.name: f for f in dataclasses.fields(cls)}
        out += ["| field | required / default | allowed | meaning |", "| --- | --- | --- | --- |"]
        for name, allowed, doc in describe_fields(cls):
            out.append(f"| `{name}` | {_default(fields[name])} | {allowed} | {doc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
