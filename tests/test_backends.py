"""The backend registry (lightnorm.backends) and the template RTL's extension points.

Every registered backend renders a design whose top is ``lightnorm_top`` with the port list of
docs/rtl.md section 4; an unknown name is one clear error naming the registered ones; the unit
templates' port contract (``codegen.rtl.UNIT_PORTS``) is what they render; and no module
outside ``lightnorm/backends/`` decides anything by comparing a backend's name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightnorm import backends
from lightnorm.backends import (
    DEFAULT_BACKEND,
    Backend,
    backend_names,
    compared_backends,
    get_backend,
)
from lightnorm.cli import core as cli
from lightnorm.codegen import rtl
from lightnorm.flow import stages as st
from lightnorm.spec import Spec, SpecError, load, preset_names
from lightnorm.tools.xls import XLS_PACKAGE, xls_version
from lightnorm.verify import cosim

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lightnorm"
#: one BFP range-BN preset and one FP standard-BN preset
PORT_PRESETS = ("lightnorm", "bf16-standard")


def _top_ports(verilog: str) -> dict[str, tuple[str, int]]:
    """name -> (direction, width) of lightnorm_top's port list (the test reads the output)."""
    m = re.search(r"module lightnorm_top\s*\((.*?)\);", verilog, re.DOTALL)
    assert m is not None
    out = {}
    for d, hi, name in re.findall(r"(input|output)\s+(?:wire|reg)\s+(?:\[(\d+):0\]\s*)?(\w+)",
                                  m.group(1)):
        out[name] = (d, int(hi) + 1 if hi else 1)
    return out


def _documented_ports() -> set[str]:
    """The port names of the table in docs/rtl.md section 4 (first column, backticked)."""
    text = (ROOT / "docs" / "rtl.md").read_text()
    section = text.split("## 4.", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    assert len(names) > 30, "docs/rtl.md section 4 has no port table any more"
    return names


# ---- the registry --------------------------------------------------------------------------


def test_registry_lists_the_backends_default_first() -> None:
    names = backend_names()
    assert names[0] == DEFAULT_BACKEND == "template" and "xls" in names
    assert len(set(names)) == len(names)
    assert [b.name for b in compared_backends()] == list(names[1:])
    for name in backend_names():
        b = get_backend(name)
        assert isinstance(b, Backend) and b.name == name and b.label and b.description
    assert isinstance(get_backend("xls"), backends.XlsBackend)
    assert isinstance(get_backend("template"), backends.TemplateBackend)


@pytest.mark.parametrize("bad", ["vhdl", "", "XLS", None])
def test_unknown_backend_is_one_error_naming_the_registered_ones(bad: object) -> None:
    with pytest.raises(SpecError) as e:
        get_backend(bad)  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("backend = ")
    assert "one of " + ", ".join(backend_names()) in msg
    # every caller goes through the registry: the same error before any tool runs
    with pytest.raises(SpecError, match="one of template, xls"):  # (and any later ones)
        cosim.model_dir(load("lightnorm"), backend="vhdl")


def test_cache_tags_and_tool_versions() -> None:
    """The template RTL keeps its cache keys (no tag); the XLS backend's name its tool
    version, and the co-simulation model directory follows."""
    t, x = get_backend("template"), get_backend("xls")
    assert t.cache_tag() == () and t.tool_versions() == {}
    assert x.tool_versions() == {XLS_PACKAGE: xls_version()}
    assert x.cache_tag() == ("xls", xls_version())
    spec = load("lightnorm")
    assert cosim.model_dir(spec).name == spec.hash
    assert cosim.model_dir(spec, backend="xls").name == f"{spec.hash}-xls{xls_version()}"


def test_template_backend_has_no_options() -> None:
    spec = load("lightnorm")
    t = get_backend("template")
    assert t.render(spec) == rtl.render_rtl(spec)
    # its registers are placed for the clock: a slower one needs fewer
    slow = t.render(spec, clock_ns=20.0)
    assert slow == rtl.render_rtl(spec, clock_ns=20.0) and slow != t.render(spec)
    with pytest.raises(SpecError, match="backend template: option lanes"):
        t.render(spec, lanes="xls")


def test_flow_stage_and_cli_choices_come_from_the_registry(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert st.BACKEND_STAGES == {b.flow_stage: b.name for b in compared_backends()}
    assert st.BACKEND_STAGES["synth_xls"] == "xls"
    assert set(st.EXTRA_STAGES) == {st.ESTIMATE, *st.BACKEND_STAGES, st.ACCURACY}
    assert "synth_xls" in st.RUNNERS
    assert st.tool_versions("synth_xls")[XLS_PACKAGE] == xls_version()
    for command in ("cosim", "synth"):
        assert cli.main([command, "lightnorm", "--backend", "vhdl"]) == 2
        err = capsys.readouterr().err
        assert "--backend" in err and all(f"'{n}'" in err for n in backend_names())


# ---- every backend's design ------------------------------------------------------------------


@pytest.fixture(scope="module", params=PORT_PRESETS)
def spec(request: pytest.FixtureRequest) -> Spec:
    return load(request.param)


@pytest.fixture(scope="module")
def designs(spec: Spec) -> dict[str, dict[str, str]]:
    return {n: get_backend(n).render(spec) for n in backend_names()}


@pytest.mark.parametrize("name", backend_names())
def test_design_top_has_the_documented_port_list(name: str, spec: Spec,
                                                 designs: dict[str, dict[str, str]]) -> None:
    files = designs[name]
    assert files["lightnorm.f"].split() == sorted(f for f in files if f.endswith(".v"))
    ports = _top_ports(files[f"{rtl.TOP}.v"])
    assert set(ports) == _documented_ports()
    # the widths of section 4, the same for every backend
    assert ports == _top_ports(designs[DEFAULT_BACKEND][f"{rtl.TOP}.v"])
    lanes, roles = spec.hw.lanes, spec.storage.roles()
    assert ports["channels"] == ports["n"] == ("input", 32)
    assert ports["inv_n"] == ("input", spec.scalar.width)
    assert ports["pc_out_scale"] == ("output", spec.scalar.width)
    for role, port, d in (("x", "x_data", "input"), ("dy", "dy_data", "input"),
                          ("y", "y_data", "output"), ("dx", "dx_data", "output")):
        assert ports[port] == (d, lanes * roles[role].view.w)
    # every module is one file named after it, instantiated by another one (but the top)
    modules = {f[:-2]: text for f, text in files.items() if f.endswith(".v")}
    for m, text in modules.items():
        assert re.search(rf"^module {re.escape(m)}\s*\(", text, re.MULTILINE), m
        assert m == rtl.TOP or any(
            re.search(rf"^\s*{re.escape(m)}\s+\w+\s*\(", other, re.MULTILINE)
            for o, other in modules.items() if o != m), m


def test_generated_modules_are_the_backends_own(designs: dict[str, dict[str, str]]) -> None:
    assert get_backend("template").generated_modules(designs["template"]) == set()
    gen = get_backend("xls").generated_modules(designs["xls"])
    assert gen and all(m.startswith("xls_") and f"{m}.v" in designs["xls"] for m in gen)
    assert not gen & {f[:-2] for f in designs["template"]}


# ---- the extension points of the template RTL ------------------------------------------------


@pytest.mark.parametrize("preset", preset_names())
def test_unit_ports_are_the_unit_templates_port_lists(preset: str) -> None:
    """``UNIT_PORTS`` (what an override of a unit's body connects) is each unit template's
    port list, in order, for every unit of every preset's design as the XLS backend's shell
    has it (no registers in the units; an accumulator's adder, which selects its own operands,
    is not overridden)."""
    c = rtl.rtl_context(load(preset), rtl.Combinational())
    files = rtl.render_design(c)
    seen = set()
    for name, m in c["modules"].mods.items():
        unit = rtl.UNIT_PORTS.get(m.template)
        if unit is None or m.ctx.get("ways", 0) > 1:
            continue
        seen.add(m.template)
        head = re.search(rf"module {name} \((.*?)\);", files[f"{name}.v"], re.DOTALL)
        assert head is not None
        names = re.findall(r"(?:input|output)\s+(?:wire|reg)\s+(?:signed\s+)?(?:\[[^\]]+\]\s*)?"
                           r"(\w+)", head.group(1))
        assert names == unit.names(), (name, names)
    assert seen >= {"fp_add.v.j2", "fp_mul.v.j2", "fp_cvt.v.j2", "fp_recip.v.j2"}


def test_override_of_a_module_the_design_lacks_is_an_error() -> None:
    c = rtl.rtl_context(load("fp32-baseline"))
    with pytest.raises(ValueError, match="bfp_scan_nothing"):
        rtl.render_design(c, {"bfp_scan_nothing": rtl.Override("xls/unit.v.j2")})


def test_xls_overrides_extend_the_template_ones() -> None:
    """The XLS backend's templates are overrides (``extends base``), not copies: none of them
    declares a module's ports itself, except the per-lane modules that have no template."""
    xls_dir = PACKAGE / "templates" / "rtl" / "xls"
    for path in sorted(xls_dir.glob("*.v.j2")):
        text = path.read_text()
        if path.name == "lane.v.j2":
            continue
        assert text.startswith("<% extends base %>"), path.name
        assert not re.search(r"^(module|\s*(input|output)\s)", text, re.MULTILINE), path.name


# ---- no backend decisions by name outside the backends ----------------------------------------


def _name_comparisons(text: str) -> list[str]:
    names = "|".join(re.escape(n) for n in backend_names())
    lit = rf"""["'](?:{names})["']"""
    patterns = [
        rf"(?:==|!=)\s*{lit}", rf"{lit}\s*(?:==|!=)",  # backend == "xls"
        rf"\bin\s*[(\[{{]\s*{lit}",  # backend in ("template", "xls")
        rf"""startswith\(\s*["'](?:{names})_""",  # module.startswith("xls_")
        rf"choices\s*=\s*[(\[]\s*{lit}",  # a hand-written --backend choice list
    ]
    return [m.group(0) for p in patterns for m in re.finditer(p, text)]


def test_no_backend_name_comparisons_outside_the_backends() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "backends" in path.relative_to(PACKAGE).parts:
            continue
        found = _name_comparisons(path.read_text())
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert not offenders, offenders


@pytest.mark.parametrize("line", [
    'if backend == "xls":', "if 'template' != b:", 'ok = b in ("template", "xls")',
    'm.startswith("xls_")', 'p.add_argument("--backend", choices=["template", "xls"])',
])
def test_the_name_check_finds_comparisons(line: str) -> None:
    assert _name_comparisons(line)


@pytest.mark.parametrize("line", [
    'cache_root("xls")', 'XLS_DIR = "xls"', 'if stage == "synth_xls":',
    '{"template": t.cached, "xls": x.cached}',
])
def test_the_name_check_leaves_other_uses_alone(line: str) -> None:
    assert not _name_comparisons(line)


class _Mirror(Backend):
    """A backend that is the template RTL under another name: what registering one gives."""

    name = "mirror"
    label = "mirror"
    description = "the template RTL again"

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               **options: object) -> dict[str, str]:
        return rtl.render_rtl(spec)


def test_a_registered_backend_is_known_everywhere(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Registering a class is all the CLI, co-simulation and comparison need: its name is a
    --backend choice, its model has its own cache directory, it is compared with the default."""
    monkeypatch.setitem(backends._REGISTRY, "mirror", _Mirror())
    assert backend_names()[-1] == "mirror" and get_backend("mirror").flow_stage == "synth_mirror"
    assert "mirror" in [b.name for b in compared_backends()]
    spec = load("lightnorm")
    assert cosim.model_dir(spec, backend="mirror").name == f"{spec.hash}-mirror"
    assert cosim.model_files(spec, "mirror") == cosim.model_files(spec)
    assert cli.main(["cosim", "--help"]) == 0
    assert "mirror: the template RTL again" in " ".join(capsys.readouterr().out.split())
