"""Code generation: the output tree, its manifest, determinism, refusal rules, the Vitis HLS
script, warning-free compilation of the design and testbench, and the template rules."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import jinja2
import pytest

import lightnorm
from lightnorm.codegen import context, environment, generate, template_hash
from lightnorm.codegen.env import apuint, cident, hexlit, template_names, template_root
from lightnorm.codegen.generate import TEMPLATE_PREFIXES
from lightnorm.codegen.rtl import render_rtl
from lightnorm.errors import UsageError
from lightnorm.spec import load, preset_names
from lightnorm.spec.formats import FAMILIES
from lightnorm.tools import gxx
from lightnorm.verify import csim

#: the HLS library: its base, every format family's header, the BN kernels
LIBRARY = ["ln_ap.h", *(fam.fragments.hls_lib for fam in FAMILIES.values()), "ln_bn.h"]


def expected_files(ident: str) -> set[str]:
    spec = next(load(n) for n in preset_names() if load(n).ident == ident)
    hls = {f"hls/{n}" for n in LIBRARY + [f"{ident}_config.h", f"{ident}.h", f"{ident}.cpp",
                                         f"tb_{ident}.cpp", "run_hls.tcl", "README.md"]}
    return hls | {f"rtl/{n}" for n in render_rtl(spec)} | {"xls/lightnorm_xls.x"}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", preset_names())
def test_generate_tree_and_manifest(tmp_path: Path, name: str) -> None:
    spec = load(name)
    out = generate(spec, tmp_path / "out")
    assert out == tmp_path / "out"
    files = tree(out)
    assert set(files) == expected_files(spec.ident) | {"manifest.json"}
    man = json.loads(files["manifest.json"])
    assert man["spec_hash"] == spec.hash and man["spec_name"] == spec.name
    assert man["spec"] == spec.to_dict()
    assert man["lightnorm_version"] == lightnorm.__version__
    assert man["template_hash"] == template_hash(TEMPLATE_PREFIXES)
    assert "rtl/lightnorm_top.v" in files
    assert {"python", "jinja2"} <= set(man["tools"])
    assert set(man["files"]) == expected_files(spec.ident)
    for rel, digest in man["files"].items():
        assert hashlib.sha256(files[rel]).hexdigest() == digest, rel
    # nothing left behind next to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_same_spec_byte_identical(tmp_path: Path) -> None:
    spec = load("lightnorm")
    a = tree(generate(spec, tmp_path / "a"))
    b = tree(generate(spec, tmp_path / "b"))
    assert a == b
    assert not re.search(rb"20\d\d-\d\d-\d\d|\d\d:\d\d:\d\d", b"".join(a.values()))


def test_regenerate_identical_leaves_tree_untouched(tmp_path: Path) -> None:
    spec = load("bf16-standard")
    out = generate(spec, tmp_path / "out")
    cpp = out / "hls" / "bf16_standard.cpp"
    before = (cpp.stat().st_ino, cpp.stat().st_mtime_ns)
    generate(spec, out)
    assert (cpp.stat().st_ino, cpp.stat().st_mtime_ns) == before


def test_regenerate_repairs_an_edited_tree(tmp_path: Path) -> None:
    spec = load("bf16-standard")
    out = generate(spec, tmp_path / "out")
    (out / "hls" / "ln_fp.h").write_text("edited\n")
    generate(spec, out)
    assert (out / "hls" / "ln_fp.h").read_text() != "edited\n"


def test_other_spec_needs_force(tmp_path: Path) -> None:
    out = generate(load("lightnorm"), tmp_path / "out")
    with pytest.raises(UsageError, match="force"):
        generate(load("fp32-baseline"), out)
    assert json.loads((out / "manifest.json").read_text())["spec_name"] == "lightnorm"
    generate(load("fp32-baseline"), out, force=True)
    man = json.loads((out / "manifest.json").read_text())
    assert man["spec_name"] == "fp32-baseline"
    assert set(tree(out)) == expected_files("fp32_baseline") | {"manifest.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a lightnorm output"):
        generate(load("lightnorm"), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        generate(load("lightnorm"), tmp_path / "file")
    (tmp_path / "empty").mkdir()
    generate(load("lightnorm"), tmp_path / "empty")  # an empty directory is fine


@pytest.mark.parametrize("name", preset_names())
def test_run_hls_tcl(tmp_path: Path, name: str) -> None:
    spec = load(name)
    hls = generate(spec, tmp_path / "out") / "hls"
    tcl = (hls / "run_hls.tcl").read_text()
    tops = re.search(r"foreach top \[list (\S+) (\S+)\]", tcl)
    assert tops and tops.groups() == (f"{spec.ident}_forward", f"{spec.ident}_backward")
    cpp = (hls / f"{spec.ident}.cpp").read_text()
    for top in tops.groups():
        assert re.search(rf"^void {top}\(", cpp, re.M), top
    assert "set_top ${top}" in tcl
    design = re.search(r"set design_files \[list ([^\]]+)\]", tcl)
    assert design
    listed = design.group(1).split()
    assert f"{spec.ident}.cpp" in listed
    for f in listed:
        assert (hls / f).is_file(), f
    assert set(listed) >= {n for n in LIBRARY}
    assert re.search(rf"set tb_file tb_{spec.ident}\.cpp", tcl)
    assert "add_files -tb $tb_file" in tcl
    assert f"set_part {spec.hw.part}" in tcl
    assert f"create_clock -period {spec.hw.clock_ns:g}" in tcl
    for step in ("open_project", "open_solution", "csim_design", "csynth_design",
                 "cosim_design", "export_design"):
        assert step in tcl, step


def test_top_has_interface_pragmas(tmp_path: Path) -> None:
    hls = generate(load("lightnorm"), tmp_path / "out") / "hls"
    cpp = (hls / "lightnorm.cpp").read_text()
    assert "LN_PRAGMA(HLS INTERFACE m_axi port=x offset=slave" in cpp
    assert "LN_PRAGMA(HLS INTERFACE m_axi port=x_exp" in cpp
    assert "LN_PRAGMA(HLS INTERFACE s_axilite port=n)" in cpp
    assert "LN_PRAGMA(HLS INTERFACE s_axilite port=return)" in cpp
    bn = (hls / "ln_bn.h").read_text()
    assert "LN_PRAGMA(HLS PIPELINE II=1)" in bn and "ARRAY_PARTITION" in bn
    assert '#define LN_PRAGMA(x) _Pragma(#x)' in (hls / "ln_ap.h").read_text()
    # FP storage has no exponent ports; standard BN takes n/(n-1), range BN C(n/K)/K
    fp = (generate(load("bf16-standard"), tmp_path / "fp") / "hls" / "bf16_standard.cpp")
    text = fp.read_text()
    assert "x_exp" not in text and "unbias" in text and " c_k" not in text
    assert " c_k" in cpp and "unbias," not in cpp


def test_library_is_the_same_for_every_spec(tmp_path: Path) -> None:
    libs = [tree(generate(load(n), tmp_path / n) / "hls") for n in preset_names()]
    for name in LIBRARY:
        assert len({lib[name] for lib in libs}) == 1, name


def test_names_carry_parameters(tmp_path: Path) -> None:
    hls = generate(load("lightnorm-aggressive"), tmp_path / "out") / "hls"
    cfg = (hls / "lightnorm_aggressive_config.h").read_text()
    assert "typedef ln::fp<5, 6, ln::RTZ> fp_e5m6_rtz;" in cfg
    assert "typedef ln::bfp<32, 5, 8, ln::RNE, ln::RAISE> bfp_g32m5e8_rne_raise;" in cfg
    assert "typedef fp_e5m6_rtz compute;" in cfg
    assert "static const int lanes_log2 = 4;" in cfg


def test_context_is_computed_in_python() -> None:
    spec = load("lightnorm")
    ctx = context(spec)
    assert ctx["ident"] == "lightnorm" and ctx["lanes_log2"] == 4 and ctx["chunks"] == 8
    comp = ctx["roles"]["compute"]  # the format's view (spec.formats)
    assert comp is spec.compute.view
    assert comp.name == "fp_e6m9_rne" and comp.w == 16
    assert dict(comp.checks) == {"W": 16, "BIAS": 31, "EMIN": -30, "EMAX": 31,
                                 "traits::MAX_FIELD": 62}
    assert comp.maxpat == 0x7DFF
    x = ctx["roles"]["x"]
    assert x.kind == "bfp" and dict(x.checks)["traits::MAXM"] == 127 and x.xbits == 8
    fwd = [p["name"] for p in ctx["forward_ports"]]
    assert fwd[:4] == ["x", "x_exp", "y", "y_exp"] and "running_sigma" in fwd
    # plain data besides the views (frozen dataclasses of plain data)
    json.dumps(ctx, default=lambda v: {k: val for k, val in vars(v).items() if k != "fmt"})


def test_static_asserts_catch_a_disagreement(tmp_path: Path) -> None:
    """The config header cross-checks Python's constants against the C++ library."""
    hls = generate(load("lightnorm"), tmp_path / "out") / "hls"
    cfg = hls / "lightnorm_config.h"
    good = ["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-isystem",
            str(gxx.ap_types_dir()), "-I", str(hls), "-x", "c++", str(cfg)]
    assert subprocess.run(good, capture_output=True, text=True).returncode == 0
    cfg.write_text(cfg.read_text().replace("fp_e6m9_rne::BIAS == 31", "fp_e6m9_rne::BIAS == 30"))
    res = subprocess.run(good, capture_output=True, text=True)
    assert res.returncode != 0 and "fp_e6m9_rne::BIAS" in res.stderr


@pytest.mark.parametrize("name,std", [("lightnorm", "c++14"), ("bf16-standard", "c++17")])
def test_testbench_compiles_warning_free_and_passes(tmp_path: Path, name: str, std: str) -> None:
    """Design + testbench as a program: g++ -Wall -Wextra -Werror, no output at all; the
    testbench passes on golden vectors and fails on a corrupted expectation."""
    spec = load(name)
    hls = generate(spec, tmp_path / "out") / "hls"
    exe = tmp_path / "tb"
    argv = ["g++", "-O2", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-isystem",
            str(gxx.ap_types_dir()), "-I", str(hls), str(hls / f"{spec.ident}.cpp"),
            str(hls / f"tb_{spec.ident}.cpp"), "-o", str(exe)]
    res = subprocess.run(argv, capture_output=True, text=True)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stderr[-3000:]
    vec = csim.write_vectors(spec, tmp_path / "vectors", seed=4)
    run = subprocess.run([str(exe), str(vec)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "0 mismatches" in run.stdout
    compared = int(re.search(r"(\d+) words compared", run.stdout).group(1))  # type: ignore[union-attr]
    assert compared > 0
    assert (vec / "out_y.hex").read_text() == (vec / "expect_y.hex").read_text()
    words = (vec / "expect_dgamma.hex").read_text().split()
    words[0] = f"{int(words[0], 16) ^ 1:x}"
    (vec / "expect_dgamma.hex").write_text("\n".join(words) + "\n")
    bad = subprocess.run([str(exe), str(vec)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "MISMATCH dgamma[0]" in bad.stdout


# ---- the Jinja environment -------------------------------------------------------------------


def test_environment_settings() -> None:
    env = environment()
    assert env.undefined is jinja2.StrictUndefined
    assert env.trim_blocks and env.lstrip_blocks and env.keep_trailing_newline
    assert Path(env.loader.searchpath[0]) == template_root()  # type: ignore[union-attr]
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("hls/config.h.j2").render()
    assert all(n.endswith(".j2") for n in template_names("hls") + template_names("csim"))


def test_filters() -> None:
    assert hexlit(0x7BFF, 16) == "0x7bff"
    assert hexlit(5, 3) == "0x5"
    assert hexlit(0x7F7FFFFF, 32) == "0x7f7fffffULL"
    with pytest.raises(ValueError):
        hexlit(256, 8)
    assert apuint(24) == "ap_uint<24>"
    assert cident("bf16-standard") == "bf16_standard"
    for bad in ("9x", "a b", "a;b", ""):
        with pytest.raises(ValueError):
            cident(bad)


def test_templates_only_substitute() -> None:
    """No arithmetic inside a Jinja expression: numbers come computed from Python."""
    root = template_root()
    for name in template_names("hls") + template_names("csim"):
        text = (root / name).read_text()
        for expr in re.findall(r"\{\{.*?\}\}", text):
            inner = re.sub(r"'[^']*'|\"[^\"]*\"", "''", expr[2:-2])  # drop string literals
            assert not re.search(r"[-+*/%]", inner), (name, expr)
