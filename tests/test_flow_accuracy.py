"""The flow's opt-in accuracy stage (lightnorm.flow.stages, docs/flow.md and docs/accuracy.md):
its keys (the spec, the training settings and the code that trains; the FP32 reference keyed
without the spec, so every spec shares one), a flow that trains each spec once and reuses
everything on a rerun, sweep files that set it, the terminal table, and the one line (exit 2)
without PyTorch.

The tests that train are marked ``torch`` (tox's torch environment); the others need no torch.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from lightnorm.cli.core import main
from lightnorm.flow import sources
from lightnorm.flow import stages as st
from lightnorm.flow.store import ResultStore
from lightnorm.flow.sweep import SweepError, load_sweep
from lightnorm.spec import dumps, from_dict, load

from .test_flow import TINY
from .test_report import make_summaries

ACC, REF = st.ACCURACY, st.ACCURACY_REFERENCE


def _keys(spec_names: tuple[str, ...], opts: st.FlowOptions) -> dict[tuple[str, str], str]:
    ref_deps = {REF: {"accuracy_pct": {"mean": 98.0, "std": 0.5, "per_seed": [98.0]}}}
    out = {}
    for name in spec_names:
        spec = load(name)
        for stage in (REF, ACC):
            inputs = st.stage_inputs(stage, spec, opts, ref_deps)
            out[name, stage] = st.stage_key(stage, spec, inputs, st.tool_versions(stage))
    return out


def test_accuracy_keys_share_the_reference_and_follow_the_settings() -> None:
    opts = st.FlowOptions(stages=(ACC,))
    k = _keys(("lightnorm", "fp32-baseline"), opts)
    # one reference for every spec; one result per spec
    assert k["lightnorm", REF] == k["fp32-baseline", REF]
    assert k["lightnorm", ACC] != k["fp32-baseline", ACC]
    assert _keys(("lightnorm",), opts) == {key: v for key, v in k.items()
                                           if key[0] == "lightnorm"}
    for other in (st.FlowOptions(accuracy_epochs=2), st.FlowOptions(accuracy_seeds=1),
                  st.FlowOptions(accuracy_dataset="synthetic")):
        changed = _keys(("lightnorm",), other)
        assert changed["lightnorm", REF] != k["lightnorm", REF]
        assert changed["lightnorm", ACC] != k["lightnorm", ACC]
    # csim's seeds and the energy shape are not training settings
    same = _keys(("lightnorm",), st.FlowOptions(seeds=(7,), layer_shape=(1, 2, 3, 4)))
    assert same["lightnorm", ACC] == k["lightnorm", ACC]
    assert {"torch", "scikit-learn", "numba"} <= set(st.tool_versions(ACC))
    assert st.planned((ACC, "quality")) == ["quality", REF, ACC]
    assert st.planned(st.STAGES) == list(st.STAGES)


def test_accuracy_keys_follow_the_layer_and_the_golden_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec's result is retrained when the PyTorch layer or the golden model changes, the
    reference when the training loop changes, and neither for code they do not run."""
    spec, opts = load("lightnorm"), st.FlowOptions()
    deps = {REF: {"accuracy_pct": {"mean": 98.0}}}

    def keys(root: Path) -> dict[str, str]:
        monkeypatch.setattr(sources, "package_root", lambda: root)
        return {s: st.stage_key(s, spec, st.stage_inputs(s, spec, opts, deps), {})
                for s in (REF, ACC)}

    package = sources.package_root()
    installed = keys(package)
    got = {}
    for case, rel in {"original": None, "loop": "train/accuracy.py", "layer": "train/layer.py",
                      "golden": "verify/golden.py", "report": "reports/trade.py",
                      "cli": "cli/flow.py"}.items():
        root = tmp_path / case / "lightnorm"
        shutil.copytree(package, root, ignore=shutil.ignore_patterns("__pycache__"))
        if rel is not None:
            with (root / rel).open("a") as f:
                f.write("\n")
        got[case] = keys(root)
    assert got["original"] == installed
    for case in ("loop", "layer", "golden"):
        assert got[case][ACC] != installed[ACC], case
    assert got["loop"][REF] != installed[REF]
    assert got["report"] == got["cli"] == installed


def test_accuracy_without_torch_is_one_line_exit_2(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails; find_spec: None
    out = tmp_path / "out"
    assert main(["flow", "lightnorm", "-o", str(out), "--stages", "quality,accuracy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("lightnorm: error: the accuracy stage needs PyTorch and scikit-learn "
                          "(not installed: torch): pip install 'lightnorm[train]'")
    assert not out.exists()  # nothing written, nothing run
    sweep = tmp_path / "s.toml"
    sweep.write_text('[sweep]\nname = "s"\nbase = "lightnorm"\nstages = ["accuracy"]\n'
                     '[axes]\n"compute.man_bits" = [5, 6]\n')
    assert main(["sweep", str(sweep), "-o", str(out)]) == 2
    assert "the accuracy stage needs PyTorch" in capsys.readouterr().err
    assert not out.exists()
    # the stages that need no torch run as before
    assert main(["flow", "lightnorm", "-o", str(out), "--stages", "quality", "--json"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--accuracy-epochs", "0"], "--accuracy-epochs = '0': expected an integer in 1..1000"),
    (["--accuracy-seeds", "101"], "--accuracy-seeds = '101': expected an integer in 1..100"),
    (["--accuracy-dataset", "mnist"], "--accuracy-dataset: invalid choice: 'mnist'"),
])
def test_bad_accuracy_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              args: list[str], message: str) -> None:
    assert main(["flow", "lightnorm", "-o", str(tmp_path / "o"), "--stages", "accuracy",
                 *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


SWEEP = """
[sweep]
name = "acc-sweep"
base = "lightnorm"
stages = ["quality", "accuracy"]
{accuracy}

[axes]
"compute.man_bits" = [5, 7]
"""


def test_sweep_files_set_the_accuracy_stage(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(SWEEP.format(accuracy='accuracy = { dataset = "synthetic", epochs = 4, '
                                       'seeds = 2 }'))
    sw = load_sweep(p)
    assert ACC in sw.stages
    assert sw.accuracy == {"dataset": "synthetic", "epochs": 4, "seeds": 2}
    p.write_text(SWEEP.format(accuracy=""))
    assert load_sweep(p).accuracy == {}
    for bad, message in (("accuracy = { epochs = 0 }", "sweep.accuracy.epochs = 0: expected "
                                                       "an integer in 1..1000"),
                         ('accuracy = { dataset = "cifar" }', "sweep.accuracy.dataset = "
                                                              "'cifar': expected one of"),
                         ("accuracy = { lr = 0.1 }", "sweep.accuracy = {'lr': 0.1}: expected "
                                                     "a table of dataset, epochs, seeds"),
                         ("accuracy = 3", "sweep.accuracy = 3")):
        p.write_text(SWEEP.format(accuracy=bad))
        with pytest.raises(SweepError, match=re.escape(message)):
            load_sweep(p)
    shipped = load_sweep(Path(__file__).parent.parent / "specs" / "sweeps" /
                         "range-precision-block.toml")
    assert ACC in shipped.stages and "synth" in shipped.stages


def test_terminal_table_has_accuracy_only_when_it_ran() -> None:
    from lightnorm.cli.flow import ACCURACY_COLUMN, table_caption, table_rows

    summaries = make_summaries()[:4]
    head, rows = table_rows(summaries, "fp32-baseline")
    by = {r[0]: dict(zip(head, r, strict=True)) for r in rows}
    assert by["lightnorm"][ACCURACY_COLUMN] == "99.35±0.16 (+0.46)"
    assert by["fp32-baseline"][ACCURACY_COLUMN] == "98.89±0.83 (+0.00)"
    assert "acc: test accuracy" in table_caption(summaries, "fp32-baseline")
    summaries[2]["stages"]["accuracy"] = {"status": "failed", "reason": "diverged",
                                          "metrics": None}
    head, rows = table_rows(summaries, "fp32-baseline")
    assert rows[2][head.index(ACCURACY_COLUMN)] == "FAILED"
    for s in summaries:
        del s["stages"]["accuracy"]
    head, _ = table_rows(summaries, "fp32-baseline")
    assert ACCURACY_COLUMN not in head
    assert "acc:" not in table_caption(summaries, "fp32-baseline")


# --- training (torch) -------------------------------------------------------------------------
def _accuracy_rows(store: ResultStore) -> list[Any]:
    return [r for r in store.rows() if r.stage in (ACC, REF)]


@pytest.mark.torch
def test_flow_trains_each_spec_once_against_one_reference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "out"
    argv = ["flow", "lightnorm", "bf16-standard", "-o", str(out), "--stages",
            "quality,accuracy", "--accuracy-epochs", "1", "--accuracy-seeds", "2", "--jobs",
            "2", "--baseline", "bf16-standard", "--json"]
    assert main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    store = ResultStore(out, create=False)
    rows = _accuracy_rows(store)
    # one reference for both specs (the second worker waited for it or read it), one row each
    assert sorted((r.spec_name, r.stage) for r in rows) == [
        ("bf16-standard", ACC), ("lightnorm", ACC), ("torch-fp32", REF)]
    ref = next(r for r in rows if r.stage == REF).metrics
    assert ref is not None and ref["variant"] == "torch-fp32"
    for s in body["specs"]:
        assert list(s["stages"]) == ["quality", REF, ACC]
        m = s["stages"][ACC]["metrics"]
        assert m["dataset"]["name"] == "digits" and m["training"]["epochs"] == 1
        assert len(m["accuracy_pct"]["per_seed"]) == 2 and len(m["curves"]) == 2
        assert 0 < m["accuracy_pct"]["mean"] <= 100
        assert m["delta_pp"] == pytest.approx(m["accuracy_pct"]["mean"]
                                              - ref["accuracy_pct"]["mean"])
        assert m["reference"]["accuracy_pct"] == ref["accuracy_pct"]
    # the report shows the trade
    html = Path(body["report"]["html"]).read_text(encoding="utf-8")
    assert "figures/training_curves.png" in html and "test accuracy (%, mean ± std)" in html
    # no synthesis and energy in this run: no cost to plot against, and the page says so
    assert "figures/trade_area_accuracy.png" not in html
    assert "No accuracy plots: fewer than two specs have both a test accuracy" in html

    # a rerun trains nothing
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert all(v.get("cached") for s in again["specs"] for v in s["stages"].values())
    assert len(_accuracy_rows(store)) == 3
    # the table has the accuracy column
    assert main([a for a in argv if a != "--json"]) == 0
    assert "acc % (Δ pp)" in capsys.readouterr().out
    # other settings: a new reference and new results, the old rows stay
    assert main([*argv[:-1], "--accuracy-seeds", "1", "--json"]) == 0
    capsys.readouterr()
    assert len(_accuracy_rows(store)) == 6


@pytest.mark.torch
def test_flow_result_equals_lightnorm_accuracy(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Trained in a flow worker or next to the reference in `lightnorm accuracy`: the same
    weights, batches and arithmetic give the same accuracy, seed by seed."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from lightnorm.train.accuracy import TrainConfig, run_accuracy

    assert main(["flow", "lightnorm", "-o", str(tmp_path), "--stages", "accuracy",
                 "--accuracy-epochs", "1", "--accuracy-seeds", "2", "--jobs", "1",
                 "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["specs"][0]["stages"][ACC]["metrics"]
    res = run_accuracy([load("lightnorm")], "digits", TrainConfig(epochs=1), seeds=2,
                       progress=False)
    ref, ln = res["variants"]
    assert m["accuracy_pct"]["per_seed"] == [100 * a for a in ln["test_acc"]["per_seed"]]
    assert m["reference"]["accuracy_pct"]["per_seed"] == [
        100 * a for a in ref["test_acc"]["per_seed"]]
    assert [c["train_loss"] for c in m["curves"]] == [c["train_loss"] for c in ln["curves"]]


@pytest.mark.torch
def test_the_spec_s_own_eps_and_a_batch_it_cannot_take(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tiny-flow trains with its own eps (1e-2; torch's 1e-5 flushes to zero in its FP(5,6)
    scalar format); tiny-acc's channels are too short for the batch: an error row."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    small = dict(TINY, name="tiny-acc", hw={"lanes": 2, "max_channel_elems": 1024})
    paths = []
    for table in (TINY, small):
        paths.append(tmp_path / f"{table['name']}.toml")
        paths[-1].write_text(dumps(from_dict(table)))
    assert from_dict(TINY).bn.eps == 1e-2
    assert main(["flow", *map(str, paths), "-o", str(tmp_path / "o"), "--stages", "accuracy",
                 "--accuracy-epochs", "1", "--accuracy-seeds", "1", "--jobs", "1",
                 "--json"]) == 1
    ok, bad = json.loads(capsys.readouterr().out)["specs"]
    assert ok["stages"][ACC]["status"] == "ok", ok["stages"][ACC]["reason"]
    assert bad["stages"][REF]["status"] == "ok"
    assert bad["stages"][ACC]["status"] == "error"
    assert "N*H*W of BN layer 0 with --batch-size 64 = 4096" in bad["stages"][ACC]["reason"]


def test_flow_single_file_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--single-file``: the flow's report is report.html alone, nothing it references."""
    out = tmp_path / "out"
    assert main(["flow", "lightnorm", "-o", str(out), "--stages", "quality", "--jobs", "1",
                 "--baseline", "lightnorm", "--single-file", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert report["markdown"] is None
    assert [p.name for p in (out / "report").iterdir()] == ["report.html"]
    html = Path(report["html"]).read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in html and 'src="figures/' not in html
    assert main(["report", str(out), "--single-file"]) == 0
    assert "markdown:" not in capsys.readouterr().out
