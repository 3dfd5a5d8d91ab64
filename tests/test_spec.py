"""The spec package: presets, TOML/dict round trips, hashing and validation (property tests)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lightnorm.spec import (
    Spec,
    SpecError,
    check_channel_elems,
    dumps,
    from_dict,
    load,
    loads,
    preset_names,
    save,
)

from .strategies import invalid_spec_cases, valid_spec_tables

PRESETS = preset_names()
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def assert_one_line_error(err: SpecError, path: str) -> None:
    msg = str(err)
    assert err.path == path, msg
    assert msg.startswith(f"{path} = "), msg
    assert ": expected " in msg, msg
    assert "\n" not in msg


def assert_subset(table: Any, full: Any, where: str = "") -> None:
    """Every value given in ``table`` comes back unchanged in ``full`` (defaults filled in)."""
    if isinstance(table, dict):
        assert isinstance(full, dict), where
        for k, v in table.items():
            assert k in full, f"{where}.{k} lost"
            assert_subset(v, full[k], f"{where}.{k}")
    else:
        assert table == full and type(table) is type(full), (where, table, full)


# --- presets ------------------------------------------------------------------------------------
def test_presets_exist() -> None:
    assert "lightnorm" in PRESETS
    assert {"fp32-baseline", "bf16-standard", "lightnorm-aggressive"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_round_trips(name: str, tmp_path: Any) -> None:
    spec = load(name)
    assert isinstance(spec, Spec)
    assert spec.name == name
    # TOML text
    assert loads(dumps(spec)) == spec
    # plain tables, and JSON (what `lightnorm show --json` prints)
    assert from_dict(spec.to_dict()) == spec
    assert from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # a file on disk, loaded by path
    path = tmp_path / f"{name}.toml"
    save(spec, path)
    assert load(path) == spec
    assert load(str(path)) == spec
    # the dumped TOML holds every field explicitly
    assert tomllib.loads(dumps(spec)) == spec.to_dict()


@pytest.mark.parametrize("name", PRESETS)
def test_preset_hash_is_stable(name: str) -> None:
    spec = load(name)
    h = spec.hash
    assert len(h) == 64 and int(h, 16) >= 0
    assert load(name).hash == h
    assert loads(dumps(spec)).hash == h
    assert from_dict(spec.to_dict()).hash == h
    assert dataclasses.replace(spec, name=spec.name + "-b").hash != h
    assert dataclasses.replace(spec, description=spec.description + ".").hash != h


def test_normalize_form_enters_the_hash_only_when_set() -> None:
    """bn.normalize (docs/numerics.md section 8) at its default "affine" leaves the hash as it
    was before the field existed (a pinned value: generated RTL prints it, results and caches
    are keyed by it); "centered" is another spec. Left out of a table, it takes the default."""
    spec = load("lightnorm")
    assert spec.bn.normalize == "affine"
    assert spec.hash == "828e1253756145548a1a1b432ead2483fc9890707a92c9beac8f0df8dc89be19"
    t = spec.to_dict()
    assert t["bn"]["normalize"] == "affine"
    del t["bn"]["normalize"]
    assert from_dict(t) == spec
    c = spec.with_normalize("centered")
    assert c.bn.normalize == "centered" and c.hash != spec.hash
    assert loads(dumps(c)) == c and loads(dumps(c)).hash == c.hash
    assert c.with_normalize("affine") == spec
    with pytest.raises(SpecError, match="bn.normalize"):
        spec.with_normalize("centred")


def test_hash_is_the_same_in_another_process() -> None:
    code = ("import json; from lightnorm.spec import load, preset_names; "
            "print(json.dumps({n: load(n).hash for n in preset_names()}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == {n: load(n).hash for n in PRESETS}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_derived_facts(name: str) -> None:
    spec = load(name)
    bits = spec.bits_per_element()
    assert set(bits) == {"x", "y", "dy", "dx"}
    assert all(0 < b <= 64 for b in bits.values())
    ob = spec.offchip_bytes_per_element()
    assert ob["total"] == pytest.approx(ob["forward"] + ob["backward"])
    assert 2 <= spec.min_channel_elems() <= spec.hw.max_channel_elems
    # the default shape of `lightnorm golden` (8,16,14,14) suits every preset
    check_channel_elems(spec, 8 * 14 * 14)


def test_fp32_baseline_moves_32_bytes_per_element() -> None:
    ob = load("fp32-baseline").offchip_bytes_per_element()
    assert ob == {"forward": 12.0, "backward": 20.0, "total": 32.0}


def test_spec_is_frozen() -> None:
    spec = load("lightnorm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


# --- loading errors -----------------------------------------------------------------------------
def test_unknown_preset() -> None:
    with pytest.raises(SpecError) as exc:
        load("no-such-preset")
    assert_one_line_error(exc.value, "spec")
    assert "lightnorm" in str(exc.value)  # lists the presets


def test_missing_file(tmp_path: Any) -> None:
    with pytest.raises(SpecError) as exc:
        load(tmp_path / "missing.toml")
    assert_one_line_error(exc.value, "spec")


def test_bad_toml_file(tmp_path: Any) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[bn\nmode = "range"\n', encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load(path)
    # the field is the spec argument and its value the file (not the file in the field's place)
    assert_one_line_error(exc.value, "spec")
    assert exc.value.value == str(path)
    assert "TOML" in str(exc.value) and "line 2" in str(exc.value)


def test_non_utf8_file(tmp_path: Any) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(SpecError) as exc:
        load(path)
    assert_one_line_error(exc.value, "spec")


@pytest.mark.parametrize("value", [3, "spec", [1, 2], None, True])
def test_top_level_not_a_table(value: Any) -> None:
    with pytest.raises(SpecError) as exc:
        from_dict(value)
    assert_one_line_error(exc.value, "<spec>")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda t: t["compute"].__setitem__("man_bits", 40), "compute.man_bits"),
        (lambda t: t["hw"].__setitem__("lanes", 12), "hw.lanes"),
        (lambda t: t.__setitem__("name", "9x"), "name"),
        (lambda t: t.__setitem__("name", "a b"), "name"),
        (lambda t: t.__setitem__("name", "A"), "name"),
        (lambda t: t["storage"]["dy"].__setitem__("block", 8), "storage.dy.block"),
        (lambda t: t["bn"].update(mode="standard"), "bn.chunks"),
        (lambda t: t["hw"].__setitem__("max_channel_elems", 100), "hw.max_channel_elems"),
        (lambda t: t["bn"].__setitem__("eps", 1e-40), "bn.eps"),
        (lambda t: t["storage"]["x"].__setitem__("kind", "int"), "storage.x.kind"),
        (lambda t: t["storage"].__setitem__("z", {}), "storage.z"),
        (lambda t: t["storage"]["y"].pop("man_bits"), "storage.y.man_bits"),
        (lambda t: t.__setitem__("hw", "fast"), "hw"),
    ],
)
def test_examples_of_invalid_fields(mutate: Any, path: str) -> None:
    table = load("lightnorm").to_dict()
    mutate(table)
    with pytest.raises(SpecError) as exc:
        from_dict(table)
    assert_one_line_error(exc.value, path)


@pytest.mark.parametrize(("section", "key"), [("bn", "eps"), ("bn", "momentum"),
                                              ("hw", "clock_ns")])
def test_huge_integer_in_a_float_field_is_a_spec_error(section: str, key: str) -> None:
    # TOML integers have no size limit in tomllib: `eps = 999...9` (400 digits) parses.
    table = load("lightnorm").to_dict()
    table[section][key] = 123454321
    text = tomli_w.dumps(table).replace("123454321", "9" * 400)
    assert tomllib.loads(text)[section][key] == int("9" * 400)
    with pytest.raises(SpecError):
        loads(text)


def test_directory_does_not_shadow_a_preset(tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "lightnorm").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load("lightnorm").name == "lightnorm"


# --- property tests -------------------------------------------------------------------------------
@PROPERTY
@given(valid_spec_tables())
def test_random_valid_specs_load_and_round_trip(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    assert_subset(table, spec.to_dict())
    # the same table written as TOML text
    assert loads(tomli_w.dumps(table)) == spec
    # and back
    assert loads(dumps(spec)) == spec
    assert from_dict(spec.to_dict()) == spec
    assert from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert loads(dumps(spec)).hash == spec.hash
    assert spec.min_channel_elems() <= spec.hw.max_channel_elems


@PROPERTY
@given(invalid_spec_cases())
def test_random_invalid_specs_raise_spec_error_naming_the_field(
    case: tuple[dict[str, Any], str, str],
) -> None:
    table, path, _kind = case
    with pytest.raises(SpecError) as exc:
        from_dict(table)
    assert_one_line_error(exc.value, path)
    # the same through TOML text
    with pytest.raises(SpecError) as exc:
        loads(tomli_w.dumps(table))
    assert_one_line_error(exc.value, path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_is_rejected_with_spec_error(text: str) -> None:
    try:
        tomllib.loads(text)
        toml_ok = True
    except tomllib.TOMLDecodeError:
        toml_ok = False
    with pytest.raises(SpecError) as exc:
        loads(text, "random.toml")
    assert "\n" not in str(exc.value)
    if not toml_ok:
        assert_one_line_error(exc.value, "spec")
        assert exc.value.value == "random.toml"


@PROPERTY
@given(valid_spec_tables(), st.data())
def test_corrupted_spec_text_is_rejected_with_spec_error(
    table: dict[str, Any], data: st.DataObject,
) -> None:
    text = tomli_w.dumps(table)
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.sampled_from(["[", "]", "=", '"', "[[", "\x00", " = =", "\n[bn]\n",
                                      "{", "'''", "\n= 1\n"]))
    bad = text[:cut] + junk + text[cut:]
    try:
        ok_spec = from_dict(tomllib.loads(bad))
    except (tomllib.TOMLDecodeError, SpecError):
        ok_spec = None
    assume(ok_spec is None)  # the junk may land inside a string and leave a valid spec
    with pytest.raises(SpecError) as exc:
        loads(bad, "bad.toml")
    assert "\n" not in str(exc.value)


def test_spec_reference_doc_is_current() -> None:
    from pathlib import Path

    from lightnorm.spec.doc import render

    doc = Path(__file__).resolve().parents[1] / "docs" / "spec.md"
    assert doc.read_text() == render(), "run: python -m lightnorm.spec.doc > docs/spec.md"


def test_every_documented_default_is_what_a_left_out_field_takes() -> None:
    """docs/spec.md says which fields are optional and their defaults: leaving one out of a
    spec gives exactly that value, and leaving out a required one is an error naming it."""
    import dataclasses
    import tomllib

    from lightnorm.spec import BFPFormat, BNConfig, FPFormat, HWConfig, Spec
    from lightnorm.spec.doc import _default, render

    doc = render()
    bfp = next(n for n in preset_names() if isinstance(load(n).storage.x, BFPFormat))
    places = {BNConfig: ["bn"], HWConfig: ["hw"], FPFormat: ["compute"],
              BFPFormat: ["storage", "x"], Spec: []}
    checked = 0
    for cls, where in places.items():
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` | {_default(f)} |" in doc, (cls.__name__, f.name)
            table = tomllib.loads(dumps(load(bfp)))
            node = table
            for key in where:
                node = node[key]
            del node[f.name]
            path = ".".join([*where, f.name])
            if f.default is dataclasses.MISSING:
                with pytest.raises(SpecError) as exc:
                    from_dict(table)
                assert exc.value.path == path
            else:
                got: Any = from_dict(table)
                for key in where:
                    got = getattr(got, key)
                assert getattr(got, f.name) == f.default, path
            checked += 1
    assert checked >= 20
