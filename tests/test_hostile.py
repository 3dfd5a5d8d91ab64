"""Hostile input (issue 15): every command driven with malformed specs, names, options, paths
and report files must exit 0 or 2 as documented - 2 with exactly one line on stderr - never
show a traceback, write nothing outside its output, and delete nothing lightnorm did not write.

The fuzz test is a seeded generator (reproducible: the seed and the failing argv are in the
message) over every command, run in-process through ``lightnorm.cli.core.main``; a few cases
run as real processes. Expensive commands (csim, cosim, synth, flow...) only get inputs with at
least one bad part, so they stop before any work. docs/reliability.md lists what is promised.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lightnorm.cli import args as cliargs
from lightnorm.cli import flow as cliflow
from lightnorm.cli.core import build_parser, main
from lightnorm.codegen.generate import generate
from lightnorm.flow import stages as st
from lightnorm.flow import sweep as sweepmod
from lightnorm.flow.runner import Job, run_specs
from lightnorm.flow.store import ResultStore
from lightnorm.flow.sweep import SweepError, load_sweep
from lightnorm.spec import dumps, from_dict, load
from lightnorm.spec.names import CPP_KEYWORDS, HEADER_STEMS, VERILOG_KEYWORDS

from .test_synth import TINY as SYNTH_TINY

TINY = dict(SYNTH_TINY, name="tiny-hostile", hw={"lanes": 2, "max_channel_elems": 4096})
REPORTS = Path(__file__).parent / "data" / "reports"
SEED = 20261127
#: files of the user's in the sandbox: no command may change or delete them
USER_FILES = {"keep.txt": "a user's file", "userdir/notes.txt": "a user's notes",
              "owned/keep.txt": "mine, not lightnorm's", "owned/hls/my_notes.md": "mine too"}
CASES = 400
TIME_BUDGET_S = 50.0


# --- the sandbox --------------------------------------------------------------------------------
def _tree(root: Path, content: bool = False) -> dict[str, Any]:
    """Every file and folder under ``root`` -> its identity: inode, size and modification time
    (or a digest of the content), "dir" for folders."""
    out: dict[str, Any] = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        elif content:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            s = p.stat()
            out[rel] = (s.st_ino, s.st_size, s.st_mtime_ns)
    return out


def _under(rel: str, outputs: list[str]) -> bool:
    return any(rel == o or rel.startswith(o.rstrip("/") + "/") for o in outputs)


@dataclass
class Case:
    argv: list[str]
    #: paths (relative to the sandbox) the command may create, change or remove under
    outputs: list[str] = field(default_factory=list)
    #: the input is bad: exit status 2 is the only right answer
    bad: bool = False


class Sandbox:
    """A working directory with every kind of input a hostile user could pass."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root, self.rng = root, rng
        root.mkdir()
        good = tomllib.loads(dumps(from_dict(TINY)))
        self.good_table = good
        (root / "specs").mkdir()
        (root / "specs" / "good.toml").write_text(dumps(from_dict(good)))
        (root / "afile").write_text("a regular file where a folder is expected")
        (root / "userdir").mkdir()
        (root / "owned").mkdir()
        for rel, text in USER_FILES.items():
            if not rel.startswith("owned/"):
                (root / rel).write_text(text)
        (root / "bin.toml").write_bytes(bytes(range(256)) * 4)
        (root / "empty.toml").write_text("")
        self.bad_specs = self._bad_specs(40)
        self.reports = self._reports(40)
        self.sweeps = self._sweeps()
        # a lightnorm output with a user's files inside: --force must keep them
        generate(from_dict(good), root / "owned")
        for rel, text in USER_FILES.items():
            (root / rel).write_text(text)
        # a results store with a flow's rows, and a damaged one
        store = ResultStore(root / "res")
        run_specs([Job(from_dict(good))], st.FlowOptions(stages=("generate",),
                                                          out_dir=str(root / "res")), store, 0)
        (root / "damaged").mkdir()
        db = (root / "res" / "results.sqlite").read_bytes()
        page = 4096
        (root / "damaged" / "results.sqlite").write_bytes(
            db[:page] + bytes(rng.randrange(256) for _ in range(page)) + db[2 * page:])

    # - malformed specs -
    def _bad_specs(self, n: int) -> list[str]:
        out = []
        for i in range(n):
            path = self.root / "specs" / f"bad{i}.toml"
            kind = i % 8
            t = copy.deepcopy(self.good_table)
            if kind == 0:  # a field with a value of the wrong kind or range
                sec, key = self.rng.choice([(s, k) for s, v in t.items() if isinstance(v, dict)
                                            for k in v])
                t[sec][key] = self.rng.choice([-1, 0, 10**30, 1.5, -0.0, "x", True, [1], {},
                                               "", 1e308, "nan"])
                text = _toml(t)
            elif kind == 1:  # a missing required field
                del t[self.rng.choice(["name", "bn", "hw", "storage", "compute", "accum",
                                       "scalar"])]
                text = _toml(t)
            elif kind == 2:  # an unknown key
                t[self.rng.choice(["bn", "hw", "compute"])]["bogus"] = 1
                text = _toml(t)
            elif kind == 3:  # a reserved or malformed name
                t["name"] = self.rng.choice(sorted(HEADER_STEMS | CPP_KEYWORDS | VERILOG_KEYWORDS)
                                            + ["ln_fp", "ln-bn", "ap_int", "a--b", "x-", "A",
                                               "../x", "a/b", "a" * 65, "9", ""])
                text = _toml(t)
            elif kind == 4:  # TOML cut short
                full = _toml(t)
                text = full[:self.rng.randrange(1, len(full) - 1)] + "[["
            elif kind == 5:  # random bytes in the middle
                full = _toml(t).encode()
                at = self.rng.randrange(len(full))
                path.write_bytes(full[:at] + bytes(self.rng.randrange(256) for _ in range(8))
                                 + full[at:])
                out.append(f"specs/{path.name}")
                continue
            elif kind == 6:  # a cross-field rule broken (block not a multiple of the lanes)
                t["hw"]["lanes"] = 4
                text = _toml(t)
            else:  # a storage role of an unknown kind, or a table where a value goes
                t["storage"]["x"] = self.rng.choice([{"kind": "int8"}, "fp32", 3, {"kind": []}])
                text = _toml(t)
            path.write_text(text)
            out.append(f"specs/{path.name}")
        return out

    # - malformed tool reports -
    def _reports(self, n: int) -> list[str]:
        (self.root / "reports").mkdir()
        sources = sorted(p for p in REPORTS.iterdir() if p.is_file() and p.suffix != ".v"
                         and p.name != "README.md")
        out = []
        for i in range(n):
            src = self.rng.choice(sources)
            data = src.read_bytes()
            how = i % 5
            if how == 0:  # truncated
                data = data[:self.rng.randrange(len(data))]
            elif how == 1:  # bytes flipped
                b = bytearray(data)
                for _ in range(self.rng.randrange(1, 20)):
                    b[self.rng.randrange(len(b))] = self.rng.randrange(256)
                data = bytes(b)
            elif how == 2:  # numbers made negative, huge or not numbers
                text = data.decode(errors="replace")
                digits = [j for j, c in enumerate(text) if c.isdigit() and
                          (j == 0 or not text[j - 1].isdigit())]
                for j in sorted(self.rng.sample(digits, min(5, len(digits))), reverse=True):
                    text = text[:j] + self.rng.choice(["-", "9e999", "nan", "1e-400", "-0"]) + \
                        text[j:]
                data = text.encode()
            elif how == 3:  # lines dropped
                lines = data.splitlines(keepends=True)
                keep = [ln for ln in lines if self.rng.random() > 0.2]
                data = b"".join(keep)
            # how == 4: intact
            path = self.root / "reports" / f"r{i}{src.suffix}"
            path.write_bytes(data)
            out.append(f"reports/{path.name}")
        return out

    # - malformed sweep files -
    def _sweeps(self) -> dict[str, bool]:
        """sweep file -> whether it is valid."""
        d = self.root / "sweeps"
        d.mkdir()
        base = "../specs/good.toml"
        files = {
            "ok.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\nstages = ['generate']\n"
                        "[axes]\n'compute.man_bits' = [2, 3]\n", True),
            "name_axis.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\n[axes]\n"
                               "'name' = ['a', 'b']\n", False),
            "desc_set.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\n[sweep.set]\n"
                              "description = 'x'\n[axes]\n'compute.man_bits' = [2]\n", False),
            "dup.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\n[[points]]\n"
                         "'compute.man_bits' = 2\n[[points]]\n'compute.man_bits' = 2\n", False),
            "badstage.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\nstages = []\n[axes]\n"
                              "'compute.man_bits' = [2]\n", False),
            "nobase.toml": ("[sweep]\nname = 'fz'\nbase = 'nope'\n[axes]\n"
                            "'compute.man_bits' = [2]\n", False),
            "badtoml.toml": ("[sweep\nname = 'fz'\n", False),
            "nopoints.toml": (f"[sweep]\nname = 'fz'\nbase = '{base}'\n", False),
            "badname.toml": (f"[sweep]\nname = 'Fz Z'\nbase = '{base}'\n[axes]\n"
                             "'compute.man_bits' = [2]\n", False),
        }
        for name, (text, _) in files.items():
            (d / name).write_text(text)
        (d / "binary.toml").write_bytes(bytes(range(128, 256)) * 8)
        return {f"sweeps/{k}": v for k, (_, v) in files.items()} | {"sweeps/binary.toml": False}

    def any_spec(self) -> tuple[str, bool]:
        """A spec argument and whether it is valid."""
        r = self.rng.random()
        if r < 0.25:
            return self.rng.choice(["specs/good.toml", "lightnorm", "fp32-baseline"]), True
        if r < 0.85:
            return self.rng.choice(self.bad_specs), False
        return self.rng.choice(["nope.toml", "specs", "bin.toml", "empty.toml", "afile", "",
                                "no-such-preset", "/proc/self/status", "keep.txt",
                                "../../../etc/hostname", "-"]), False


def _toml(t: dict[str, Any]) -> str:
    import tomli_w

    def clean(v: Any) -> Any:
        if isinstance(v, float) and v != v:
            return "nan"
        return v

    return tomli_w.dumps({k: clean(v) for k, v in t.items()})


BAD_SEEDS = ["-1", "x", "", "1.5", str(2 ** 64), " ", "0x10", "1e3", "--1"]
BAD_SHAPES = ["0,1,1,1", "1,2,3", "a,b,c,d", "", "-1,2,3,4", "1,1,1,1e3", "1,1,1,99999999",
              "1,,1,1", "1,1,1,1,1"]
BAD_CLOCKS = ["nan", "inf", "-1", "0", "abc", "", "1e-9", "-inf"]
BAD_JOBS = ["0", "-3", "x", "", "1.5", "99999"]
BAD_STAGES = ["", "bogus", ",", "csim,,x", " ", "generate,Generate"]


def _bad_option(rng: random.Random, options: dict[str, list[str]]) -> list[str]:
    opt = rng.choice(sorted(options))
    return [opt, rng.choice(options[opt])]


def _cases(box: Sandbox, n: int) -> list[Case]:
    rng = box.rng
    out: list[Case] = []

    def heavy(cmd: str, options: dict[str, list[str]], extra: Callable[[], list[str]] = list
              ) -> Case:
        """A command that does real work: always one bad part (the spec or an option)."""
        spec, ok = box.any_spec()
        argv = [cmd, spec, *extra()]
        if ok or rng.random() < 0.5:
            argv += _bad_option(rng, options)
        return Case(argv, bad=True)

    makers: list[Callable[[], Case]] = []

    def cheap_spec(cmd: str) -> Case:
        spec, ok = box.any_spec()
        return Case([cmd, spec] + (["--json"] if rng.random() < 0.5 else []), bad=not ok)

    makers += [lambda: cheap_spec("show"), lambda: cheap_spec("validate")]

    def gen() -> Case:
        spec, ok = box.any_spec()
        target = rng.choice(["new", "owned", "userdir", "afile", ".", "/proc/x", "", "new/deep"])
        force = rng.random() < 0.5
        outputs = [target] if target == "owned" else []
        if target.startswith("new"):
            target = f"out/g{len(out)}" + ("/deep" if target == "new/deep" else "")
            outputs = ["out"]
        bad = not ok or target in ("userdir", "afile", ".", "/proc/x", "") or (
            target == "owned" and not force and spec != "specs/good.toml")
        return Case(["generate", spec, "-o", target] + (["--force"] if force else []),
                    outputs=outputs, bad=bad)

    makers += [gen, gen]
    makers.append(lambda: heavy("golden", {"--seed": BAD_SEEDS, "--shape": BAD_SHAPES}))
    makers.append(lambda: heavy("csim", {"--seed": BAD_SEEDS, "--shape": BAD_SHAPES,
                                         "--pass": ["none", "", "Both"]}))
    makers.append(lambda: heavy("cosim", {"--seed": BAD_SEEDS, "--shape": BAD_SHAPES,
                                          "--backend": ["vhdl", ""]}))
    makers.append(lambda: heavy("synth", {"--seed": BAD_SEEDS, "--clock-ns": BAD_CLOCKS,
                                          "--liberty": ["nope.lib", "userdir", ""],
                                          "--shape": BAD_SHAPES, "--flow": ["x"]}))
    makers.append(lambda: heavy("hls", {"--clock-ns": BAD_CLOCKS, "-o": ["afile"],
                                        "--delay-model": ["x"]}))

    def parse() -> Case:
        target = rng.choice(box.reports + ["userdir", "nope.rpt", "bin.toml", "empty.toml"])
        return Case(["parse", target] + (["--json"] if rng.random() < 0.5 else []),
                    bad=target in ("userdir", "nope.rpt", "bin.toml", "empty.toml"))

    makers += [parse, parse, parse]

    def flow() -> Case:
        specs = [box.any_spec()[0] for _ in range(rng.randrange(1, 3))]
        argv = ["flow", *specs, "-o", "fo"]
        opts = {"--stages": BAD_STAGES, "--jobs": BAD_JOBS, "--shape": BAD_SHAPES,
                "--clock-ns": BAD_CLOCKS, "--liberty": ["nope.lib", "userdir"],
                "-o": ["afile", ""], "--synth-flow": ["x"]}
        if all(s in ("specs/good.toml", "lightnorm", "fp32-baseline") for s in specs) or \
                rng.random() < 0.6:
            argv += _bad_option(rng, opts)
        return Case(argv, outputs=["fo"], bad=True)

    makers.append(flow)

    def sweep() -> Case:
        f = rng.choice(sorted(box.sweeps) + ["nope.toml", "userdir", "bin.toml"])
        ok = box.sweeps.get(f, False)
        if ok and rng.random() < 0.5:
            return Case(["sweep", f, "--list"], bad=False)
        argv = ["sweep", f, "-o", "so"]
        if ok:
            argv += _bad_option(rng, {"--stages": BAD_STAGES, "--jobs": BAD_JOBS,
                                      "-o": ["afile"], "--clock-ns": BAD_CLOCKS})
        elif rng.random() < 0.5:
            argv.append("--list")
        return Case(argv, outputs=["so"], bad=True)

    makers += [sweep, sweep]

    def report() -> Case:
        r = rng.random()
        if r < 0.15:
            csv = rng.choice(["exports/rows.csv", "exports/deeper/rows.csv"])
            return Case(["report", "res", "--csv", csv], outputs=["res", "exports"])
        where = rng.choice(["res", "damaged", "nowhere", "afile", "userdir"])
        argv = ["report", where]
        argv += rng.choice([["--csv", "userdir"], ["--csv", "afile/x.csv"], ["-o", "/proc/x"],
                            ["-o", "afile"], ["--baseline", "nope"], ["--csv", ""]])
        # the results directory is the report's own: SQLite may add its -wal/-shm files there
        return Case(argv, outputs=[where] if where in ("res", "damaged") else [], bad=True)

    makers.append(report)
    makers.append(lambda: Case(["regress", box.any_spec()[0]] + _bad_option(
        rng, {"--seeds": ["-1", "", "a", "1,,2", "1.5"], "--junit": ["userdir", "afile/x"]}),
        bad=True))
    makers.append(lambda: Case(["units"] + _bad_option(
        rng, {"--formats": ["", "bogus", "fp(99,99)", "fp(1,", ","], "--clock-ns": BAD_CLOCKS,
              "--units": ["", "div", ","]}), bad=True))
    makers.append(lambda: Case(["accuracy", "specs/good.toml", "-o", "acc"] + _bad_option(
        rng, {"--epochs": ["0", "-1", "x"], "--seeds": ["0", "x"], "--lr": ["nan", "-1", "0"],
              "--batch-size": ["0"], "--dataset": ["imagenet"]}), outputs=["acc"], bad=True))

    # estimate: a bad option always (a good one would characterize the spec's modules)
    makers.append(lambda: Case(["estimate", box.any_spec()[0]] + _bad_option(
        rng, {"--clock-ns": BAD_CLOCKS, "--liberty": ["nope.lib", "userdir", "", "afile"]}),
        bad=True))
    # quantize: never a format table and a readable array together, so nothing may be written
    makers.append(lambda: Case(["quantize", rng.choice(["specs/good.toml", "nope.toml",
                                                         "empty.toml", "sweeps/binary.toml",
                                                         "userdir"]),
                                "--in", rng.choice(["nope.npy", "afile", "specs/good.toml",
                                                    "userdir"]),
                                "--out", rng.choice(["q.npy", "userdir", "", "afile/x"])],
                               bad=True))
    # quality: a bad spec among good ones (the measurement of good ones is the slow part)
    makers.append(lambda: Case(["quality", rng.choice(["nope", "bin.toml", "empty.toml",
                                                        "userdir", "ln_fp"])], bad=True))
    makers.append(lambda: Case(["bench"] + rng.choice([
        [], ["nope"], ["golden", "--spec", "nope"], ["csim", "--shape", "0,0,0,0"],
        ["cosim", "--stress", "2"], ["synth", "--clock-ns", "-1"], ["xls", "nope"],
        ["flow", "--points-axis", "0"], ["golden", "--repeat", "-3"]]), bad=True))

    def misc() -> Case:
        argv = rng.choice([["presets"], ["presets", "--json"], ["presets", "extra"],
                           ["bogus-command"], [], ["show"], ["generate", "lightnorm"],
                           ["csim", "lightnorm", "--bogus"], ["--version"], ["show", "--help"]])
        bad = argv not in (["presets"], ["presets", "--json"], ["--version"], ["show", "--help"])
        return Case(list(argv), bad=bad)

    makers.append(misc)
    for _ in range(n):
        out.append(rng.choice(makers)())
    return out


def test_fuzz_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    box = Sandbox(tmp_path / "box", rng)
    monkeypatch.chdir(box.root)
    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "120")
    cases = _cases(box, CASES)
    assert {c.argv[0] for c in cases if c.argv} >= set(_subparsers())  # every command
    t0 = time.monotonic()
    seen = {0: 0, 2: 0}
    for i, case in enumerate(cases):
        where = f"case {i} (seed {SEED}): lightnorm {' '.join(map(repr, case.argv))}"
        before = _tree(box.root)
        capsys.readouterr()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", FutureWarning)
                rc = main(case.argv)
        except BaseException as exc:  # a traceback reached the user
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        out, err = capsys.readouterr()
        assert "Traceback" not in err + out, where
        assert rc in (0, 2), f"{where}: exit {rc}\n{err}"
        if case.bad:
            assert rc == 2, f"{where}: bad input accepted (exit 0)\n{out[-500:]}"
        if rc == 2:
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("lightnorm: error: "), \
                f"{where}: stderr is not one error line:\n{err}"
        seen[rc] += 1
        after = _tree(box.root)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        outside = sorted(k for k in changed if not _under(k, case.outputs))
        assert not outside, f"{where}: wrote or removed outside its output: {outside[:5]}"
        # the user's files are never deleted or changed, whatever the command
        for mine, text in USER_FILES.items():
            assert (box.root / mine).read_text() == text, f"{where}: changed or deleted {mine}"
        for new in {o.split("/")[0] for o in case.outputs} - set(before) - {"owned", "res"}:
            shutil.rmtree(box.root / new, ignore_errors=True)  # keep the tree small
    elapsed = time.monotonic() - t0
    assert seen[0] >= 20 and seen[2] >= 100, seen  # both kinds of answer were exercised
    assert elapsed < TIME_BUDGET_S, f"the fuzz test took {elapsed:.0f} s"


@pytest.mark.parametrize("argv, needle", [
    (["csim", "lightnorm", "--seed", "-1"], "--seed"),
    (["validate", "bin.toml"], "UTF-8"),
    (["sweep", "bin.toml", "--list"], "UTF-8"),
])
def test_as_a_real_process_one_line_exit_2(tmp_path: Path, argv: list[str], needle: str) -> None:
    (tmp_path / "bin.toml").write_bytes(bytes(range(128, 256)) * 8)
    proc = subprocess.run([sys.executable, "-m", "lightnorm", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("lightnorm: error: ")
    assert needle in proc.stderr and "Traceback" not in proc.stderr


# --- one parser per option kind -------------------------------------------------------------
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_parses_each_option_kind_the_same_way() -> None:
    by_option: dict[str, set[Any]] = {}
    for name, sub in _subparsers().items():
        for action in sub._actions:
            for opt in action.option_strings:
                by_option.setdefault(opt, set()).add(action.type)
                if opt in cliargs.SHARED:
                    shared = {cliargs.SHARED[opt], cliargs.SHARED_FILE.get(opt)}
                    assert action.type in shared, (name, opt)
    assert by_option["--seed"] == {cliargs.SEED}
    assert by_option["--clock-ns"] == {cliargs.CLOCK_NS}
    assert by_option["--stages"] == {cliflow.STAGES_ARG}
    assert len(by_option["--seed"]) == 1 and len(_subparsers()) >= 15


@pytest.mark.parametrize("value", BAD_SEEDS)
@pytest.mark.parametrize("command", ["golden", "csim", "cosim", "synth"])
def test_a_bad_seed_is_one_line_for_every_command(command: str, value: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "lightnorm", "--seed", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err


def test_stages_empty_or_unknown_is_bad_input(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for value in BAD_STAGES:
        assert main(["flow", "lightnorm", "-o", str(tmp_path / "o"), "--stages", value]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--stages" in err
    assert not (tmp_path / "o").exists()
    assert cliflow.STAGES_ARG("csim, quality,csim") == ("csim", "quality")


# --- output paths and --force --------------------------------------------------------------------
def test_force_removes_only_what_the_manifest_lists(tmp_path: Path) -> None:
    out = tmp_path / "out"
    generate(load("lightnorm"), out)
    (out / "keep.txt").write_text("mine")
    (out / "hls" / "notes.md").write_text("mine too")
    old = set(json.loads((out / "manifest.json").read_text())["files"])
    assert main(["generate", "fp32-baseline", "-o", str(out), "--force"]) == 0
    new = json.loads((out / "manifest.json").read_text())
    assert new["spec_name"] == "fp32-baseline" and "incomplete" not in new
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "hls" / "notes.md").read_text() == "mine too"
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(new["files"]) | {"manifest.json", "keep.txt", "hls/notes.md"}
    assert not (old - set(new["files"])) & files  # the old spec's own files are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_never_overwrites_a_file_lightnorm_did_not_write(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    out = tmp_path / "out"
    generate(load("lightnorm"), out)
    # the user's file has the name the next spec's top file will have
    (out / "hls" / "fp32_baseline.cpp").write_text("the user's own code")
    assert main(["generate", "fp32-baseline", "-o", str(out), "--force"]) == 2
    assert "fp32_baseline.cpp" in capsys.readouterr().err
    assert (out / "hls" / "fp32_baseline.cpp").read_text() == "the user's own code"
    assert json.loads((out / "manifest.json").read_text())["spec_name"] == "lightnorm"


def test_force_refuses_a_directory_lightnorm_did_not_make(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    for target in (".", str(tmp_path)):
        assert main(["generate", "lightnorm", "-o", target, "--force"]) == 2
        assert "not a lightnorm output" in capsys.readouterr().err
    # a forged manifest cannot make lightnorm delete outside its folders
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"generator": "lightnorm", "spec_hash": "x", "files": {"keep.txt": "0", "../x": "0",
                                                               "/etc/hostname": "0"}}))
    assert main(["generate", "lightnorm", "-o", ".", "--force"]) == 0
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_a_generate_killed_half_way_is_finished_by_the_next(tmp_path: Path) -> None:
    """The manifest lists the old and the new files while files are replaced: a run cut short
    leaves a tree the next run completes, and it still knows which files are its own."""
    gen = importlib.import_module("lightnorm.codegen.generate")

    out = tmp_path / "out"
    gen.generate(load("lightnorm"), out)
    (out / "keep.txt").write_text("mine")
    calls = {"n": 0}
    real = os.replace

    def dies_after_ten(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        real(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen.os, "replace", dies_after_ten)
        with pytest.raises(KeyboardInterrupt):
            gen.generate(load("fp32-baseline"), out, force=True)
    man = json.loads((out / "manifest.json").read_text())
    assert man["incomplete"] is True
    gen.generate(load("fp32-baseline"), out, force=True)
    man = json.loads((out / "manifest.json").read_text())
    assert "incomplete" not in man and man["spec_name"] == "fp32-baseline"
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(man["files"]) | {"manifest.json", "keep.txt"}


@pytest.mark.parametrize("argv", [
    ["generate", "lightnorm", "-o", "/proc/x"],
    ["generate", "lightnorm", "-o", "afile"],
    ["flow", "lightnorm", "-o", "afile", "--stages", "generate"],
    ["flow", "lightnorm", "-o", "/proc/x", "--stages", "generate"],
    ["report", "res", "--csv", "adir"],
    ["report", "res", "--csv", "afile/x.csv"],
    ["report", "res", "-o", "/proc/x"],
    ["report", "res", "-o", "afile"],
    ["hls", "lightnorm", "-o", "afile"],
    ["regress", "lightnorm", "--junit", "adir"],
])
def test_bad_output_paths_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str],
                                       argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    spec = from_dict(TINY)
    run_specs([Job(spec)], st.FlowOptions(stages=("generate",), out_dir=str(tmp_path / "res")),
              ResultStore(tmp_path / "res"), 0)
    before = _tree(tmp_path, content=True)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lightnorm: error: ")
    assert _tree(tmp_path, content=True) == before


# --- sweeps ------------------------------------------------------------------------------------
def test_sweep_point_names_do_not_collide_and_a_collision_is_found_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "b.toml"
    base.write_text(dumps(from_dict(TINY)))
    text = ("[sweep]\nname = 'many'\nbase = 'b.toml'\n[axes]\n"
            "'compute.man_bits' = [2, 3, 4, 5, 6]\n'bn.eps' = [0.01, 0.02, 0.03, 0.04, 0.05]\n")
    (tmp_path / "s.toml").write_text(text)
    sw = load_sweep(tmp_path / "s.toml")
    names = [p.name for p in sw.points]
    assert len(set(names)) == 25
    assert all(len(n) == len("many-") + sweepmod.POINT_HASH_HEX for n in names)
    # with 4 bits of name, 25 points must collide: reported before any spec is built
    built = []
    real = sweepmod.from_dict
    monkeypatch.setattr(sweepmod, "POINT_HASH_HEX", 1)
    monkeypatch.setattr(sweepmod, "from_dict", lambda t: built.append(1) or real(t))
    with pytest.raises(SweepError, match="hash to the same name"):
        load_sweep(tmp_path / "s.toml")
    assert built == []


@pytest.mark.parametrize("table", [
    "[axes]\n'name' = ['a', 'b']\n",
    "[axes]\n'description' = ['a']\n",
    "[[points]]\n'name' = 'a'\n",
])
def test_a_sweep_cannot_set_the_name(tmp_path: Path, table: str) -> None:
    (tmp_path / "s.toml").write_text(f"[sweep]\nname = 'x'\nbase = 'lightnorm'\n{table}")
    with pytest.raises(SweepError, match="cannot set name"):
        load_sweep(tmp_path / "s.toml")


@pytest.mark.parametrize("name", ["ln-x", "ap-fast", "hls"])
def test_a_sweep_name_its_points_could_not_carry(tmp_path: Path, name: str) -> None:
    (tmp_path / "s.toml").write_text(f"[sweep]\nname = '{name}'\nbase = 'lightnorm'\n[axes]\n"
                                     "'compute.man_bits' = [5]\n")
    with pytest.raises(SweepError, match="sweep.name"):
        load_sweep(tmp_path / "s.toml")


def test_binary_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_bytes(b"\xff\xfe" + bytes(range(256)))
    with pytest.raises(SweepError, match="not a UTF-8 text file"):
        load_sweep(tmp_path / "s.toml")


# --- no warnings on stderr ----------------------------------------------------------------------
def test_csim_prints_nothing_on_stderr(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lightnorm", "csim", "lightnorm", "--shape",
                           "1,1,1,200", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["bit_exact"] is True


def test_cosim_raises_no_future_warning(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["cosim", "lightnorm", "--shape", "1,1,1,200", "--json"]) == 0
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]
