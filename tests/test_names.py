"""Spec names that would collide with a generated or system file, a keyword or a library
identifier are rejected (lightnorm.spec.names); every other name gives the same set of files.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.codegen.generate import render_files
from lightnorm.spec import SpecError, dumps, from_dict, load
from lightnorm.spec.names import (
    CPP_KEYWORDS,
    DSLX_KEYWORDS,
    HEADER_STEMS,
    RESERVED_PREFIXES,
    VERILOG_KEYWORDS,
    reserved_reason,
)
from lightnorm.tools.gxx import CXX, ap_types_dir

from .strategies import names

BASE = load("lightnorm")


def _with_name(name: str) -> dict:
    import tomllib

    table = tomllib.loads(dumps(BASE))
    table["name"] = name
    return table


def _variants(word: str) -> list[str]:
    """The spellings of an identifier a spec name can have ('-' and '_' are the same)."""
    return sorted({word, word.replace("_", "-")})


reserved = st.one_of(
    st.sampled_from(sorted(CPP_KEYWORDS | VERILOG_KEYWORDS | DSLX_KEYWORDS | HEADER_STEMS)),
    st.builds(lambda p, rest: p + rest, st.sampled_from(RESERVED_PREFIXES),
              st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=12)),
    st.builds(lambda c, n: f"{c}{n}", st.sampled_from("us"), st.integers(0, 4096)),
    st.builds(lambda w, sep: w + sep, names, st.sampled_from(["-", "_"])),
    st.builds(lambda a, sep, b: a + sep + b, names, st.sampled_from(["--", "__", "-_", "_-"]),
              st.text("abc", min_size=1, max_size=3)),
).filter(lambda n: re.fullmatch(r"[a-z][a-z0-9_-]*", n) is not None and len(n) <= 64)


@settings(max_examples=300, deadline=None)
@given(reserved.flatmap(lambda w: st.sampled_from(_variants(w))))
def test_reserved_names_are_rejected_naming_the_field(name: str) -> None:
    assert reserved_reason(name) is not None
    with pytest.raises(SpecError) as exc:
        from_dict(_with_name(name))
    assert exc.value.path == "name"
    assert "\n" not in str(exc.value)


def test_the_examples_of_the_issue() -> None:
    for name in ("ln_fp", "ln_bn", "ln_ap", "ln_bfp", "ln-fp", "ap_int", "stdint", "math"):
        with pytest.raises(SpecError, match="^name = "):
            from_dict(_with_name(name))
    for name in ("lightnorm", "lightnorm-aggressive", "fp32-baseline", "lnx", "mathematics"):
        assert from_dict(_with_name(name)).name == name


def _named(ident: str) -> set[str]:
    """The files whose names come from the spec's name."""
    return {f"hls/{n}" for n in (f"{ident}.h", f"{ident}.cpp", f"{ident}_config.h",
                                 f"tb_{ident}.cpp")}


@settings(max_examples=40, deadline=None)
@given(names)
def test_every_accepted_name_gives_the_same_files(name: str) -> None:
    spec = from_dict(_with_name(name))
    files = set(render_files(spec))
    base = set(render_files(BASE))
    # nothing overwritten: the four named files and the same library files as any other name
    assert _named(spec.ident) <= files
    assert files - _named(spec.ident) == base - _named(BASE.ident)
    assert len({p.lower() for p in files}) == len(files)


_BARE_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^/<>"]+)\.h[>"]', re.M)


@pytest.mark.parametrize("preset", ["lightnorm", "fp32-baseline"])
def test_every_header_the_generated_code_includes_is_reserved(preset: str,
                                                             tmp_path: Path) -> None:
    """Every header that the generated HLS C++ and what it includes (ap_types, the C++ and C
    libraries, as g++ -M finds them) include by a bare name (``<math.h>``, ``"ln_fp.h"``)
    could be shadowed by a ``<ident>.h`` of the design: its stem must be a name the spec
    rejects."""
    spec = load(preset)
    for rel, data in render_files(spec, ("hls",)).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    hls = tmp_path / "hls"
    sources = [str(hls / f"{spec.ident}.cpp"), str(hls / f"tb_{spec.ident}.cpp")]
    run = subprocess.run([CXX, "-std=c++17", "-pthread", "-isystem", str(ap_types_dir()),
                          "-I", str(hls), "-M", *sources],
                         capture_output=True, text=True, check=True)
    deps = {Path(t) for t in run.stdout.replace("\\\n", " ").split()
            if not t.endswith((".o:", ".cpp"))}
    assert len(deps) > 50
    bare = set()
    for d in deps:
        for quote, stem in _BARE_INCLUDE.findall(d.read_text(errors="replace")):
            if quote == "<" or not (d.parent / f"{stem}.h").is_file():
                bare.add(stem)  # a quoted include found beside its includer is never shadowed
    assert {"stdint", "math", "ap_int"} <= bare  # the examples of the issue
    own = {spec.ident, f"{spec.ident}_config"}
    # lightnorm's own headers beside the generated ones: a spec of that name would overwrite
    bare |= {Path(rel).name[:-2] for rel in render_files(spec, ("hls",)) if rel.endswith(".h")}
    for stem in sorted(bare - own):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", stem):
            continue  # no generated file is named so: its names are identifiers (ident.h)
        assert reserved_reason(stem) is not None, f"a spec named {stem!r} would shadow {stem}.h"
