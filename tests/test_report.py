"""The comparison report (lightnorm.reports.report, docs/report.md) on synthetic summaries of the
shape the flow's results store produces: 4 presets (fp32-baseline included) and 8 sweep points,
some with a failed stage and some with a missing one. Checks the HTML parses and every local
link resolves, figures are PNGs, the Markdown names every spec and links existing files, ratios
on a hand-computed case, failed stages show their reason, a missing baseline fails cleanly and
the CSVs round-trip. Timing: a design that misses its clock is marked in every table, the ratio
rows name both clocks, and the shipped clock sweeps give their table and figure. Accuracy: the
overview's columns, the accuracy table and training curves, the trade-off plots' Pareto fronts
(checked by hand on their CSVs), a report without the stage saying so, and the single-file
layout embedding every figure and CSV. The outputs of four inputs are pinned under
tests/data/report/."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from lightnorm.errors import LightnormError
from lightnorm.reports import figures, text
from lightnorm.reports.metrics import pareto_front
from lightnorm.reports.model import BLOCKS
from lightnorm.reports.render import md_escape
from lightnorm.reports.report import ReportError, ReportFiles, build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WHEN = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
SHAPE = [32, 64, 28, 28]
ELEMENTS = 32 * 64 * 28 * 28
TOOLS = {"g++": "12.2.0", "verilator": "5.040"}
SYNTH_TOOLS = {"yosys": "0.70", "opensta": "2.0.17"}


def stage(metrics: dict[str, Any] | None, status: str = "ok", reason: str | None = None,
          tools: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "reason": reason, "finished": "2026-11-25T16:01:02Z",
            "duration_s": 3.1, "tool_versions": dict(tools or TOOLS),
            "metrics": metrics if status == "ok" else None}


def synth_metrics(area: float, blocks: dict[str, float], fmax: float, power: tuple[float, float],
                  energy: tuple[float, float], clock: float = 5.0) -> dict[str, Any]:
    assert abs(sum(blocks.values()) - area) < 1e-6 * area
    return {"area_um2": area, "area_breakdown": blocks, "fmax_mhz": fmax, "clock_ns": clock,
            "timing_met": fmax >= 1e3 / clock, "worst_slack_ns": clock - 1e3 / fmax,
            "activity": {"forward": {"cycles": 4200, "elements": 2048},
                         "backward": {"cycles": 2100, "elements": 2048}},
            "power_mw": {"forward": power[0], "backward": power[1]},
            "energy_pj_per_element": {"forward": energy[0], "backward": energy[1]},
            "gate_equivalents": {"nand2_area": area / 24.0},
            "liberty": "/usr/share/qflow/tech/osu018/osu018_stdcells.lib",
            "tool_versions": SYNTH_TOOLS}


def energy_metrics(fwd_b: float, bwd_b: float, datapath: float | None) -> dict[str, Any]:
    mem = (fwd_b + bwd_b) * 162.5
    return {"shape": SHAPE, "elements": ELEMENTS,
            "offchip_bytes_per_element": {"forward": fwd_b, "backward": bwd_b,
                                          "total": fwd_b + bwd_b},
            "memory_pj_per_element": mem, "datapath_pj_per_element": datapath,
            "total_pj_per_element": None if datapath is None else mem + datapath,
            "memory_pj": mem * ELEMENTS, "datapath_pj": None if datapath is None
            else datapath * ELEMENTS,
            "total_pj": None if datapath is None else (mem + datapath) * ELEMENTS}


def quality_metrics(err: float) -> dict[str, Any]:
    one = {"rel_rms": err, "max_abs_err": 10 * err, "sqnr_db": 20.0 if err else None}
    per = {"y": {"vs_standard": one, "vs_own": one}, "dx": {"vs_standard": one, "vs_own": one}}
    return {"shape": [8, 4, 16, 16], "mode": "range",
            "distributions": {"gaussian": per, "uniform": per},
            "summary": {"y_vs_own": err / 2, "dx_vs_own": err / 3, "y_vs_standard": err,
                        "dx_vs_standard": err * 0.9, "error": err}}


ACC_EPOCHS, ACC_SEEDS = 4, 3
#: the FP32 reference's final test accuracy per seed (%), as lightnorm.flow's accuracy stage
#: records it with every spec's result
REF_ACC = (98.89, 98.06, 99.72)


def _curve(final: float, seed: int) -> dict[str, Any]:
    """A training curve rising to ``final`` (%) at the last epoch."""
    acc = [final - (ACC_EPOCHS - 1 - i) * (3.0 + seed) for i in range(ACC_EPOCHS)]
    loss = [1.5 / (i + 1) ** 2 + (100 - final) / 100 for i in range(ACC_EPOCHS)]
    return {"seed": seed, "train_loss": loss, "test_acc_pct": acc,
            "test_loss": [v * 1.2 for v in loss]}


def _acc_summary(per_seed: tuple[float, ...]) -> dict[str, Any]:
    mean = sum(per_seed) / len(per_seed)
    std = (sum((v - mean) ** 2 for v in per_seed) / (len(per_seed) - 1)) ** 0.5
    return {"mean": mean, "std": std, "per_seed": list(per_seed)}


def accuracy_metrics(per_seed: tuple[float, ...], name: str = "spec") -> dict[str, Any]:
    """What the flow's accuracy stage records (lightnorm.flow.stages.run_accuracy)."""
    def run(variant: str, accs: tuple[float, ...]) -> dict[str, Any]:
        return {"variant": variant, "bn": f"{variant} BN",
                "accuracy_pct": _acc_summary(accs),
                "final_train_loss": {"mean": (100 - accs[0]) / 100 + 0.01, "std": 0.001,
                                     "per_seed": [(100 - a) / 100 + 0.01 for a in accs]},
                "curves": [_curve(a, k) for k, a in enumerate(accs)]}

    mine = run(name, per_seed)
    return {**mine, "dataset": {"name": "digits", "train": 1437, "test": 360},
            "training": {"epochs": ACC_EPOCHS, "seeds": list(range(ACC_SEEDS)),
                         "batch_size": 64},
            "failures": [], "seconds": 12.5, "seconds_per_epoch": 0.42,
            "delta_pp": mine["accuracy_pct"]["mean"] - _acc_summary(REF_ACC)["mean"],
            "reference": run("torch-fp32", REF_ACC)}


def verify(elements: int = 1234, cycles: int | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"bit_exact": True, "elements": elements, "mismatches": 0}
    if cycles is not None:
        m["cycles"] = cycles
    return m


def summary(spec: str, area: float, fmax: float, energy: tuple[float, float],
            bytes_: tuple[float, float], err: float, *, preset: bool = True,
            sweep: str | None = None, point: dict[str, Any] | None = None,
            bfp: float = 0.0, clock: float = 5.0,
            accuracy: tuple[float, ...] | None = None) -> dict[str, Any]:
    rest = area - bfp
    blocks = {"statistics": 0.15 * rest, "finalize": 0.05 * rest, "normalize": 0.15 * rest,
              "bfp_codec": bfp, "backward": 0.6 * rest, "control": 0.05 * rest}
    return {
        "spec": spec,
        "spec_hash": hashlib.sha256((spec + json.dumps(point)).encode()).hexdigest(),
        "preset": preset, "sweep": sweep, "point": point,
        "stages": {
            "csim": stage(verify()),
            "cosim": stage(verify(cycles=4321)),
            "synth": stage(synth_metrics(area, blocks, fmax, (1460.7, 1732.8), energy, clock),
                           tools=SYNTH_TOOLS),
            "energy": stage(energy_metrics(*bytes_, energy[0] + energy[1])),
            "quality": stage(quality_metrics(err)),
            **({} if accuracy is None else
               {"accuracy": stage(accuracy_metrics(accuracy, spec),
                                  tools={"torch": "2.13.0", "scikit-learn": "1.9.1"})}),
        },
    }


def clean_summaries() -> list[dict[str, Any]]:
    """4 presets (2 run beside the sweep) and the 8 points of sweep man-block, every stage ok
    (bf16-standard misses its clock)."""
    out = [
        summary("fp32-baseline", 22_050_000.0, 212.8, (4971.0, 4463.0), (12.0, 20.0), 0.0,
                accuracy=REF_ACC),
        summary("lightnorm", 6_777_178.0, 231.5, (1219.0, 1287.0), (3.1875, 5.3125), 2.1e-3,
                bfp=700_626.0, accuracy=(99.17, 99.44, 99.44)),
        summary("lightnorm-aggressive", 5_100_000.0, 245.0, (980.0, 1010.0), (2.5, 4.0),
                8.4e-3, bfp=500_000.0, accuracy=(91.11, 95.56, 84.44)),
        summary("bf16-standard", 9_900_000.0, 170.9, (2100.0, 2250.0), (6.0, 10.0), 4.0e-3,
                accuracy=(98.33, 98.33, 99.44)),
    ]
    # the timing plan of the lightnorm preset (older results, the others here, have none)
    out[1]["stages"]["synth"]["metrics"]["timing_plan"] = {
        "clock_ns": 5.0, "margin_ns": 0.5, "liberty": "osu018_stdcells.lib",
        "predicted_critical_ns": 4.71, "fits": False,
        "units": [{"unit": "ln_fp_mul", "cuts": [2], "latency": 1, "stage_ns": [4.7, 4.71],
                   "fits": True},
                  {"unit": "ln_accum", "cuts": [], "latency": 0, "stage_ns": [5.3],
                   "fits": False, "max_latency": 0, "why": "its loop allows at most 0 "
                   "register(s) (hw.accum_ways - 1 for an accumulator)"}]}
    # two presets ran beside the sweep (lightnorm.flow: preset, the sweep's name, no point)
    for s in out[2:4]:
        s["sweep"] = "man-block"
    # 8 sweep points, named as lightnorm.flow.sweep names them
    for k, (man, block) in enumerate((m, b) for m in (5, 7) for b in (8, 16, 32, 64)):
        err = 2.0 ** -man * (1 + block / 64)
        area = 4e6 + man * 3e5 + 2e7 / block
        acc = 99.0 - (7 - man) * (1.5 + block / 64) - 0.1 * k
        out.append(summary(f"man-block-{k:08x}", area, 195.0 + 2 * man,
                           (900.0 + 40 * man, 950.0), (2.0 + 8 / block, 4.0 + 8 / block), err,
                           preset=False,
                           sweep="man-block",
                           point={"compute.man_bits": man, "storage.*.block": block},
                           bfp=area * 0.1, accuracy=(acc, acc - 0.3, acc + 0.6)))
    return out


def make_summaries() -> list[dict[str, Any]]:
    """:func:`clean_summaries` with failed, missing and malformed stages, and designs that miss
    their clock."""
    out = clean_summaries()
    # failed and missing stages among the presets
    out[3]["stages"]["cosim"] = stage(None, "failed",
                                      "y mismatch at element 17 | lane 3\n(see cosim.log)")
    del out[2]["stages"]["quality"]
    out[5]["stages"]["synth"] = stage(None, "failed", "ABC crashed (trap in Abc_NodeFromMap_rec)")
    out[5]["stages"]["energy"] = stage(None, "skipped", "needs synth, which did not succeed")
    out[7]["stages"]["energy"] = stage(None, "error", "shape (1, 2) is not four integers")
    del out[9]["stages"]["csim"]
    out[11]["stages"]["csim"] = {**stage(None, "failed", "C-simulation not bit-exact: 3 "
                                         "mismatches in 1234 compared values; case edge"),
                                 "metrics": {"bit_exact": False, "elements": 1234,
                                             "mismatches": 3}}
    out[6]["stages"]["synth"]["metrics"].update(fmax_mhz=181.8, timing_met=False,
                                                worst_slack_ns=5.0 - 1e3 / 181.8)
    out[10]["stages"]["energy"]["metrics"]["datapath_pj_per_element"] = None
    out[10]["stages"]["energy"]["metrics"]["total_pj_per_element"] = None
    out[10]["stages"]["energy"]["metrics"]["total_pj"] = None
    # the accuracy stage: one diverged (failed), one not run
    out[8]["stages"]["accuracy"] = stage(None, "failed", "training diverged in 1 of 3 seeds; "
                                         "seed 2: epoch 3: non-finite loss at epoch 3, step 7")
    del out[9]["stages"]["accuracy"]
    return out


class LinkCollector(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(path: Path) -> LinkCollector:
    p = LinkCollector()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFiles, list[dict[str, Any]]]:
    summaries = make_summaries()
    out = tmp_path_factory.mktemp("rep") / "report"
    files = build_report(summaries, out, title="Test report", generated=WHEN)
    return files, summaries


def test_files_exist_and_figures_are_png(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    assert files.html.is_file() and files.markdown.is_file()
    names = {p.name for p in files.figures}
    assert names == {"area_by_block.png", "energy_per_element.png", "pareto_area_error.png",
                     "pareto_energy_error.png", "trade_area_accuracy.png",
                     "trade_energy_accuracy.png", "trade_bytes_error.png",
                     "training_curves.png"}
    for fig in files.figures:
        assert fig.parent.name == "figures"
        assert fig.read_bytes()[:8] == PNG_MAGIC, fig
    assert files.csv and all(p.is_file() and p.parent.name == "data" for p in files.csv)
    # no temporary folder left next to the report
    assert [p.name for p in files.html.parent.parent.iterdir()] == ["report"]


def test_html_parses_and_local_links_resolve(built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    p = parse_html(files.html)
    assert p.errors == [] and p.stack == []
    assert p.links
    root = files.html.parent
    local = 0
    for link in p.links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc, f"non-local link {link}"  # self-contained
        if not parts.path:
            assert parts.fragment in p.ids, f"dangling anchor {link}"
            continue
        target = root / unquote(parts.path)
        assert target.is_file(), link
        assert target.resolve().is_relative_to(root.resolve())
        local += 1
    srcs = {link for link in p.links if link.startswith("figures/")}
    assert srcs == {f"figures/{f.name}" for f in files.figures}
    assert {f"data/{c.name}" for c in files.csv} <= set(p.links)
    assert local >= len(files.figures) + len(files.csv)
    text = " ".join(p.text)
    for name in ("Test report", "2026-11-26 09:30 UTC", "fp32-baseline", "(32, 64, 28, 28)"):
        assert name in text
    for s in summaries:
        assert s["spec"] in text


def test_markdown_names_every_spec_and_links_existing_files(
        built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    md = files.markdown.read_text(encoding="utf-8")
    labels = [r["label"] for r in read_csv(files.html.parent / "data" / "overview.csv")]
    assert len(labels) == len(summaries) == len(set(labels))
    plain = md.replace("\\", "")
    for label in labels:
        assert label in plain, label
    import re
    targets = re.findall(r"\]\(([^)\s]+)\)", md)
    assert targets
    for t in targets:
        assert (files.markdown.parent / t).is_file(), t
    for fig in files.figures:
        assert f"](figures/{fig.name})" in md
    # table rows all have the same number of cells as their header (pipes in text escaped)
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
            assert len(counts) == 1, block


def test_ratios_hand_computed(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    rows = {r["label"]: r for r in read_csv(files.html.parent / "data" / "ratios.csv")}
    ln = rows["lightnorm"]
    assert float(ln["area_ratio_baseline_over_spec"]) == pytest.approx(22_050_000 / 6_777_178)
    assert float(ln["energy_forward_ratio_baseline_over_spec"]) == pytest.approx(4971 / 1219)
    assert float(ln["energy_backward_ratio_baseline_over_spec"]) == pytest.approx(4463 / 1287)
    assert float(ln["offchip_bytes_ratio_spec_over_baseline"]) == pytest.approx(8.5 / 32)
    assert float(ln["memory_energy_ratio_baseline_over_spec"]) == pytest.approx(32 / 8.5)
    base_total = 32 * 162.5 + 4971 + 4463
    ln_total = 8.5 * 162.5 + 1219 + 1287
    assert float(ln["total_energy_ratio_baseline_over_spec"]) == pytest.approx(
        base_total / ln_total)
    base = rows["fp32-baseline"]
    assert all(float(base[k]) == 1.0 for k in base if k.endswith(("_spec", "_baseline")))
    # displayed, with the direction in the header
    html = files.html.read_text(encoding="utf-8")
    assert "area: baseline / spec (× smaller)" in html
    assert "off-chip bytes/elem: spec / baseline (fraction)" in html
    for shown in ("3.25×", "4.08×", "3.47×", "0.266×", "3.76×"):
        assert shown in html, shown
    # a sweep point whose synth failed has no area ratio: an empty CSV cell and a dash
    failed = [r for r in rows.values() if r["label"].endswith("block=16]")
              and "man_bits=5" in r["label"]]
    assert failed and failed[0]["area_ratio_baseline_over_spec"] == ""


def test_failed_and_missing_stages_show_reason(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    html = files.html.read_text(encoding="utf-8")
    md = files.markdown.read_text(encoding="utf-8")
    for text in (html, md.replace("\\", "")):
        assert "failed: ABC crashed (trap in Abc_NodeFromMap_rec)" in text
        assert "energy skipped: needs synth, which did not succeed" in text
        assert "failed: C-simulation not bit-exact: 3 mismatches" in text
        assert "failed: y mismatch at element 17 | lane 3 (see cosim.log)" in text
        assert "error: shape (1, 2) is not four integers" in text
        assert "quality missing" in text
        assert "csim missing" in text
    assert "\\|" in md  # the pipe in the reason is escaped, not a column break
    ov = {r["label"]: r for r in read_csv(files.html.parent / "data" / "overview.csv")}
    assert ov["bf16-standard"]["cosim"].startswith("failed: y mismatch")
    assert "quality missing" in ov["lightnorm-aggressive"]["stages_not_ok"]
    assert ov["lightnorm-aggressive"]["error"] == ""  # no silent zero
    assert ov["lightnorm"]["stages_not_ok"] == ""
    # datapath missing: memory present, total empty
    en = [r for r in read_csv(files.html.parent / "data" / "energy.csv")
          if r["datapath_pj_per_element"] == "" and r["energy_status"] == "ok"]
    assert len(en) == 1 and en[0]["memory_pj_per_element"] != "" and en[0]["total_pj"] == ""


def test_csv_round_trip(built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    data = files.html.parent / "data"
    by_hash = {(s["spec_hash"]): s for s in summaries}
    syn = read_csv(data / "synthesis.csv")
    assert len(syn) == len(summaries)
    for row in syn:
        s = by_hash[row["spec_hash"]]
        st = s["stages"]["synth"]
        assert row["spec"] == s["spec"]
        assert row["preset"] == ("true" if s["preset"] else "false")
        assert (json.loads(row["point"]) if row["point"] else None) == s["point"]
        if st["status"] != "ok":
            assert row["synth_status"].startswith("failed: ")
            assert row["area_um2"] == "" and row["fmax_mhz"] == ""
            continue
        m = st["metrics"]
        assert float(row["area_um2"]) == m["area_um2"]
        assert float(row["fmax_mhz"]) == m["fmax_mhz"]
        assert float(row["power_backward_mw"]) == m["power_mw"]["backward"]
        assert float(row["energy_forward_pj_per_element"]) == \
            m["energy_pj_per_element"]["forward"]
    blocks = read_csv(data / "area_by_block.csv")
    for row in blocks:
        st = by_hash[row["spec_hash"]]["stages"]["synth"]
        if st["status"] == "ok":
            for b, v in st["metrics"]["area_breakdown"].items():
                assert float(row[f"{b}_um2"]) == v
    q = {r["spec_hash"]: r for r in read_csv(data / "quality.csv")}
    for h, s in by_hash.items():
        st = s["stages"].get("quality")
        assert (q[h]["error"] == "") if st is None else \
            float(q[h]["error"]) == st["metrics"]["summary"]["error"]
    sweep = read_csv(data / "sweep_man-block.csv")
    assert len(sweep) == 8
    assert {r["compute.man_bits"] for r in sweep} == {"5", "7"}


def test_pareto_front_and_sweep_flags(built: tuple[ReportFiles, Any]) -> None:
    assert pareto_front([]) == []
    pts = [(1.0, 5.0), (2.0, 3.0), (1.5, 6.0), (3.0, 3.0), (0.5, 9.0), (4.0, 1.0)]
    assert pareto_front(pts) == [4, 0, 1, 5]
    files, summaries = built
    rows = read_csv(files.html.parent / "data" / "sweep_man-block.csv")
    ok = [r for r in rows if r["area_um2"] and r["error"]]
    pts = [(float(r["error"]), float(r["area_um2"])) for r in ok]
    want = {ok[i]["label"] for i in pareto_front(pts)}
    assert {r["label"] for r in rows if r["pareto_area_error"] == "true"} == want
    assert all(r["pareto_area_error"] == "" for r in rows if not r["area_um2"])
    assert {r["pareto_area_error"] for r in ok} == {"true", "false"}
    # presets run beside the sweep are not sweep points; what cannot be plotted is listed
    assert not any(r["preset"] == "true" for r in rows)
    html = files.html.read_text(encoding="utf-8")
    assert "Not plotted (no area_um2 or no error): lightnorm-aggressive, man-block-00000001" in html


#: the figures of presets with every stage, accuracy included
TRADE_FIGURES = {"trade_area_accuracy.png", "trade_energy_accuracy.png", "trade_bytes_error.png",
                 "training_curves.png"}


# --- accuracy: the overview, the accuracy table, the trade-off plots and the training curves --
def test_accuracy_in_the_overview_and_its_table(built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    data = files.html.parent / "data"
    ov = {r["label"]: r for r in read_csv(data / "overview.csv")}
    ln = ov["lightnorm"]
    assert float(ln["accuracy_mean_pct"]) == pytest.approx((99.17 + 99.44 + 99.44) / 3)
    assert float(ln["accuracy_std_pct"]) == pytest.approx(0.1559, abs=1e-4)
    assert float(ln["accuracy_delta_pp"]) == pytest.approx(
        (99.17 + 99.44 + 99.44 - sum(REF_ACC)) / 3)
    assert ov["fp32-baseline"]["accuracy_delta_pp"] == "0.0"
    # a diverged run and a spec without the stage: no number, never 0
    failed = [r for r in ov.values() if r["label"].endswith("man_bits=7, block=8]")]
    missing = [r for r in ov.values() if r["label"].endswith("man_bits=7, block=16]")]
    assert failed[0]["accuracy_mean_pct"] == failed[0]["accuracy_delta_pp"] == ""
    assert missing[0]["accuracy_mean_pct"] == ""
    assert "accuracy failed: training diverged in 1 of 3 seeds" in failed[0]["stages_not_ok"]
    assert "accuracy missing" in missing[0]["stages_not_ok"]
    html = files.html.read_text(encoding="utf-8")
    # the overview shows mean ± std and the signed difference next to area, energy and bytes
    assert '<td class="num">99.35 ± 0.16</td><td class="num">+0.46</td>' in html
    assert "<th class=\"num\">test accuracy (%, mean ± std)</th>" in html
    acc = {r["label"]: r for r in read_csv(data / "accuracy.csv")}
    assert len(acc) == len(summaries) - 1  # the spec without the stage has no row
    a = acc["lightnorm-aggressive"]
    assert (a["dataset"], a["epochs"], a["seeds"]) == ("digits", "4", "3")
    assert json.loads(a["accuracy_per_seed_pct"]) == [91.11, 95.56, 84.44]
    assert json.loads(a["reference_per_seed_pct"]) == list(REF_ACC)
    assert float(a["reference_mean_pct"]) == pytest.approx(sum(REF_ACC) / 3)
    assert "91.11, 95.56, 84.44" in html
    md = files.markdown.read_text(encoding="utf-8").replace("\\", "")
    assert ("| accuracy (test, CNN with the spec's BN) | digits, 4 epochs, 3 seeds, FP32 "
            "reference 98.89 ± 0.83 % (11 of 12 specs) |") in md


def test_trade_plots_mark_the_pareto_front(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    data = files.html.parent / "data"
    for name, x, y, maximise in (("trade_area_accuracy", "area_um2", "accuracy_mean_pct", True),
                                 ("trade_energy_accuracy", "total_pj_per_element",
                                  "accuracy_mean_pct", True),
                                 ("trade_bytes_error", "offchip_bytes_per_element_total",
                                  "error", False)):
        rows = read_csv(data / f"{name}.csv")
        assert rows and all(r[x] and r[y] for r in rows)
        pts = [(float(r[x]), -float(r[y]) if maximise else float(r[y])) for r in rows]
        # by hand: on the front when no other point is at most as costly and strictly better,
        # or strictly cheaper and at least as good
        want = {r["label"] for r, (px, py) in zip(rows, pts, strict=True)
                if not any((qx <= px and qy < py) or (qx < px and qy <= py) for qx, qy in pts)}
        assert {r["label"] for r in rows if r["pareto"] == "true"} == want, name
        assert (files.html.parent / "figures" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    area = {r["label"]: r for r in read_csv(data / "trade_area_accuracy.csv")}
    # lightnorm: smallest area among those at least as accurate; the baseline is dominated
    assert area["lightnorm"]["pareto"] == "true" and area["fp32-baseline"]["pareto"] == "false"
    assert "accuracy_std_pct" in next(iter(area.values()))
    html = files.html.read_text(encoding="utf-8")
    assert ("Not plotted (no area_um2 or no accuracy_mean_pct): man-block-00000001 "
            "[man_bits=5, block=16], man-block-00000004 [man_bits=7, block=8], "
            "man-block-00000005 [man_bits=7, block=16]") in html
    assert "Dashed line and band: FP32 reference (torch.nn.BatchNorm2d), 98.89 ± 0.83 %" in html
    assert 'Data: <a href="data/trade_area_accuracy.csv">data/trade_area_accuracy.csv</a>' in html


def test_training_curves_figure_and_data(built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    rows = read_csv(files.html.parent / "data" / "training_curves.csv")
    with_curves = [s for s in summaries if s["stages"].get("accuracy", {}).get("status") == "ok"]
    # every epoch of every seed, the spec's and its reference's
    assert len(rows) == len(with_curves) * 2 * ACC_SEEDS * ACC_EPOCHS
    ln = [r for r in rows if r["label"] == "lightnorm" and r["variant"] == "spec"]
    last = [float(r["test_acc_pct"]) for r in ln if r["epoch"] == str(ACC_EPOCHS)]
    assert last == [99.17, 99.44, 99.44]
    assert {r["variant"] for r in rows} == {"spec", "reference"}
    fig = files.html.parent / "figures" / "training_curves.png"
    assert fig.stat().st_size > 20_000
    assert "figures/training_curves.png" in files.html.read_text(encoding="utf-8")


def test_report_without_the_accuracy_stage_says_so(tmp_path: Path) -> None:
    """No empty figures: the trade-off section and the accuracy section say why."""
    summaries = make_summaries()
    for s in summaries:
        s["stages"].pop("accuracy", None)
    files = build_report(summaries, tmp_path / "r")
    names = {p.name for p in files.figures}
    assert not names & {"trade_area_accuracy.png", "trade_energy_accuracy.png",
                        "training_curves.png"}
    assert "trade_bytes_error.png" in names  # needs no accuracy
    html = files.html.read_text(encoding="utf-8")
    assert "No accuracy plots: the accuracy stage did not run for any spec" in html
    assert "The accuracy stage did not run for any spec (lightnorm flow --stages" in html
    assert not (tmp_path / "r" / "data" / "accuracy.csv").exists()
    ov = read_csv(tmp_path / "r" / "data" / "overview.csv")
    assert all(r["accuracy_mean_pct"] == "" for r in ov)  # the columns stay, empty
    # accuracy for no spec that has the synthesis figures: said, not drawn
    summaries = make_summaries()
    for s in summaries:
        if "accuracy" in s["stages"]:
            s["stages"]["synth"] = stage(None, "failed", "no synthesis here")
            s["stages"]["energy"] = stage(None, "skipped", "needs synth")
    files = build_report(summaries, tmp_path / "s")
    assert "trade_area_accuracy.png" not in {p.name for p in files.figures}
    assert "No accuracy plots: fewer than two specs have both a test accuracy" in \
        files.html.read_text(encoding="utf-8")


def test_mixed_accuracy_settings_are_a_warning(tmp_path: Path) -> None:
    summaries = make_summaries()[:4]
    summaries[1]["stages"]["accuracy"]["metrics"]["training"]["epochs"] = 15
    files = build_report(summaries, tmp_path / "r")
    html = files.html.read_text(encoding="utf-8")
    assert ("the accuracy results were trained with different settings (digits, 4 epochs, 3 "
            "seeds; digits, 15 epochs, 3 seeds)") in html
    assert "Dashed line and band" not in html


# --- one self-contained file --------------------------------------------------------------------
def test_single_file_embeds_every_figure_and_csv(tmp_path: Path) -> None:
    import base64

    summaries = make_summaries()
    folder = build_report(summaries, tmp_path / "folder", generated=WHEN)
    single = build_report(summaries, tmp_path / "single", generated=WHEN, single_file=True)
    assert single.markdown is None and single.figures == [] and single.csv == []
    assert [p.name for p in (tmp_path / "single").iterdir()] == ["report.html"]
    p = parse_html(single.html)
    assert p.errors == [] and p.stack == []
    figures_seen, csv_seen = [], {}
    for link in p.links:
        if link.startswith("#"):
            assert link[1:] in p.ids
            continue
        assert link.startswith("data:"), f"external reference {link[:60]}"
        head, body = link.split(",", 1)
        data = base64.b64decode(body)
        if head == "data:image/png;base64":
            assert data[:8] == PNG_MAGIC
            figures_seen.append(data)
        else:
            assert head == "data:text/csv;charset=utf-8;base64"
            csv_seen[data] = head
    assert len(figures_seen) == len(folder.figures)
    # every CSV of the folder layout is embedded, byte for byte
    assert {c.read_bytes() for c in folder.csv} == set(csv_seen)
    html = single.html.read_text(encoding="utf-8")
    assert 'download="overview.csv"' in html and "a link saves the file" in html
    # into an existing folder report: only report.html is replaced, the rest stays
    again = build_report(summaries, tmp_path / "folder", generated=WHEN, single_file=True)
    assert (tmp_path / "folder" / "report.md").is_file()
    assert "data:image/png;base64," in again.html.read_text(encoding="utf-8")


def test_missing_baseline_or_its_synthesis_still_gives_a_report(tmp_path: Path) -> None:
    """What is there is reported; the ratios that need the baseline show — and say why."""
    summaries = [s for s in make_summaries() if s["spec"] != "fp32-baseline"]
    files = build_report(summaries, tmp_path / "a")
    html = files.html.read_text(encoding="utf-8")
    assert "baseline &#39;fp32-baseline&#39; is missing" in html or \
        "baseline 'fp32-baseline' is missing" in html
    ratios = read_csv(tmp_path / "a" / "data" / "ratios.csv")
    assert ratios and all(r["area_ratio_baseline_over_spec"] == "" for r in ratios)
    synth = {r["label"]: r for r in read_csv(tmp_path / "a" / "data" / "synthesis.csv")}
    assert float(synth["lightnorm"]["area_um2"]) == 6_777_178  # the rest is reported
    # baseline present but its synth failed (a flow without synthesis): ratios —, the reason
    bad = make_summaries()
    bad[0]["stages"]["synth"] = stage(None, "failed", "ABC crashed\nafter 25 min")
    files = build_report(bad, tmp_path / "b")
    md = files.markdown.read_text(encoding="utf-8")
    assert "stage synth is" in md and "ABC crashed after 25 min" in md
    ratios = {r["label"]: r for r in read_csv(tmp_path / "b" / "data" / "ratios.csv")}
    assert ratios["lightnorm"]["area_ratio_baseline_over_spec"] == ""
    bad = make_summaries()
    del bad[0]["stages"]["energy"]
    files = build_report(bad, tmp_path / "c")
    assert "energy is missing" in files.markdown.read_text(encoding="utf-8")
    # malformed input is still an error, and writes nothing
    with pytest.raises(ReportError) as exc:
        build_report([{"stages": {}}], tmp_path / "d")
    assert isinstance(exc.value, LightnormError) and exc.value.exit_code == 2
    assert not (tmp_path / "d").exists()


def test_failure_while_writing_leaves_nothing(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(figures, "plot_energy", boom)
    with pytest.raises(RuntimeError):
        build_report(make_summaries()[:4], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def xls_summaries() -> list[dict[str, Any]]:
    """The presets only (no sweep, no Pareto figures), one with a synth_xls comparison and one
    whose synth_xls failed."""
    summaries = make_summaries()[:4]
    tpl = summaries[1]["stages"]["synth"]["metrics"]
    side_t = {"area_um2": tpl["area_um2"], "area_breakdown": tpl["area_breakdown"],
              "fmax_mhz": 40.5, "timing_met": True,
              "energy_pj_per_element": {"forward": 1200.0, "backward": 1300.0},
              "cycles": {"forward": 600, "backward": 300}}
    side_x = {**side_t, "area_um2": tpl["area_um2"] * 1.5, "fmax_mhz": 44.0,
              "area_breakdown": {k: 1.5 * v for k, v in tpl["area_breakdown"].items()},
              "cycles": {"forward": 450, "backward": 300}}
    xls = copy.deepcopy(summaries[1]["stages"]["synth"])
    xls["metrics"]["comparison"] = {"clock_ns": 25.0, "both_met": True, "template": side_t,
                                    "xls": side_x}
    summaries[1]["stages"]["synth_xls"] = xls
    summaries[2]["stages"]["synth_xls"] = stage(None, "failed", "xls: codegen_main failed")
    return summaries


#: (clock ns, Fmax MHz, area um2, forward cycles) of the two clock sweeps' points
CLOCK_POINTS = {
    "clock-lightnorm": [(20.0, 61.0, 6.2e6, 4100), (10.0, 118.0, 6.4e6, 4150),
                        (7.0, 150.0, 6.6e6, 4180), (5.0, 190.0, 6.9e6, 4200)],
    "clock-fp32-baseline": [(20.0, 58.0, 20.5e6, 4000), (10.0, 110.0, 21.0e6, 4020),
                            (7.0, 151.0, 21.6e6, 4040), (5.0, 212.8, 22.05e6, 4060)],
}


def clock_summaries() -> list[dict[str, Any]]:
    """The two clock sweeps (specs/sweeps/clock-*.toml, stages synth and energy) and the
    fp32-baseline preset beside them; lightnorm misses 5 ns (190 MHz), every other point meets
    its clock; the 10 ns lightnorm point's synthesis failed."""
    out = [summary("fp32-baseline", 22_050_000.0, 212.8, (4971.0, 4463.0), (12.0, 20.0), 0.0)]
    for sweep, points in CLOCK_POINTS.items():
        fp32 = sweep.endswith("baseline")
        for k, (clock, fmax, area, cycles) in enumerate(points):
            s = summary(f"{sweep}-{k:020x}", area, fmax,
                        ((4800.0 if fp32 else 1150.0) + 10 * clock, 4400.0 + 12 * clock),
                        (12.0, 20.0) if fp32 else (3.1875, 5.3125), 0.0, preset=False,
                        sweep=sweep, point={"hw.clock_ns": clock}, clock=clock)
            for name in ("csim", "cosim", "quality"):
                del s["stages"][name]
            m = s["stages"]["synth"]["metrics"]
            m["activity"]["forward"]["cycles"] = cycles
            m["timing_plan"] = {"clock_ns": clock, "margin_ns": 0.5,
                                "liberty": "osu018_stdcells.lib",
                                "predicted_critical_ns": 0.93 * 1e3 / fmax, "fits": True,
                                "units": []}
            out.append(s)
    out[2]["stages"]["synth"] = stage(None, "failed", "yosys: out of memory")
    out[2]["stages"]["energy"] = stage(None, "skipped", "needs synth, which did not succeed")
    return out


def test_xls_table_and_rebuild_into_existing_folder(tmp_path: Path) -> None:
    summaries = xls_summaries()
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    files = build_report(summaries, out, generated=WHEN)
    assert (out / "notes.txt").read_text() == "mine"
    assert {p.name for p in files.figures} == {"area_by_block.png", "energy_per_element.png",
                                               *TRADE_FIGURES}
    rows = {r["label"]: r for r in read_csv(out / "data" / "template_vs_xls.csv")}
    assert set(rows) == {"lightnorm", "lightnorm-aggressive"}
    ln = rows["lightnorm"]
    assert float(ln["clock_ns"]) == 25.0 and ln["both_met"] == "true"
    assert float(ln["area_um2_ratio_xls_over_template"]) == pytest.approx(1.5)
    assert float(ln["fmax_mhz_ratio_xls_over_template"]) == pytest.approx(44.0 / 40.5)
    assert float(ln["cycles_forward_ratio_xls_over_template"]) == pytest.approx(0.75)
    assert rows["lightnorm-aggressive"]["area_um2_ratio_xls_over_template"] == ""
    blocks = read_csv(out / "data" / "template_vs_xls_blocks.csv")
    assert {b["block"] for b in blocks} == set(BLOCKS)
    assert all(b["label"] == "lightnorm" for b in blocks)
    for b in blocks:
        if float(b["area_um2_template"]) > 0:
            assert float(b["ratio_xls_over_template"]) == pytest.approx(1.5)
    html = files.html.read_text(encoding="utf-8")
    assert "Template RTL vs XLS RTL" in html and "failed: xls: codegen_main failed" in html
    p = parse_html(files.html)
    assert p.errors == []
    for link in p.links:
        if not link.startswith("#"):
            assert (out / link).is_file(), link
    assert [x.name for x in tmp_path.iterdir()] == ["r"]


def test_formats() -> None:
    assert text.fmt_mm2(6_777_178.0) == "6.777"
    assert text.fmt_mhz(43.44) == "43.4"
    assert text.fmt_int(1219.4) == "1219"
    assert text.fmt_err(0.0021) == "2.10e-03"
    assert text.fmt_err(0.0) == "0"
    assert text.fmt_sig(8.5) == "8.50" and text.fmt_sig(32.0) == "32.0"
    assert text.fmt_sig(1.5e-7) == "1.50e-07"
    assert text.fmt_ratio(22_050_000 / 6_777_178) == "3.25×"
    assert text.fmt_mj(3886.8 * ELEMENTS) == "6.24"
    assert text.fmt_sig(float("nan")) == "nan"
    assert md_escape("a|b\nc *d*") == "a\\|b c \\*d\\*"


def test_bad_input_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        build_report([], tmp_path / "x")
    with pytest.raises(ReportError, match="no spec name"):
        build_report([{"stages": {}}], tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def malformed_summary() -> dict[str, Any]:
    """Wrong types, NaN, a stage that is a string or has no status."""
    odd = copy.deepcopy(make_summaries()[1])
    st = odd["stages"]
    st["synth"]["metrics"]["area_breakdown"] = "n/a"
    st["synth"]["metrics"]["power_mw"] = 12.0
    st["synth"]["metrics"]["fmax_mhz"] = "fast"
    st["synth"]["metrics"]["clock_ns"] = "5ns"
    st["synth"]["metrics"]["energy_pj_per_element"]["forward"] = float("nan")
    st["energy"]["metrics"]["shape"] = "32x64"
    st["quality"]["metrics"]["distributions"] = {"gaussian": ["not", "a", "mapping"]}
    st["quality"]["metrics"]["summary"] = None
    st["csim"] = "passed"
    st["cosim"] = {"metrics": {"bit_exact": True}}
    st["synth_xls"] = {"status": "ok", "metrics": None}
    acc = st["accuracy"]["metrics"]
    acc["accuracy_pct"] = {"mean": "high", "std": None, "per_seed": "three"}
    acc["reference"] = None
    acc["training"] = {"epochs": "ten", "seeds": 3}
    acc["curves"] = [{"seed": 0, "train_loss": "down", "test_acc_pct": [50.0, None, 70.0]},
                     "a string"]
    odd["point"] = {"a.b": 1, "c.b": 2}
    return odd


def test_malformed_metrics_and_baseline_only(tmp_path: Path) -> None:
    """A report from malformed input, no crash, and no number invented for what is not a
    number."""
    base = make_summaries()[0]
    files = build_report([base, malformed_summary()], tmp_path / "r", baseline="fp32-baseline")
    rows = {r["label"]: r for r in read_csv(tmp_path / "r" / "data" / "synthesis.csv")}
    ln = rows["lightnorm"]
    assert ln["fmax_mhz"] == "" and ln["power_forward_mw"] == ""
    assert ln["energy_forward_pj_per_element"] == "nan"
    ratios = {r["label"]: r for r in read_csv(tmp_path / "r" / "data" / "ratios.csv")}
    assert ratios["lightnorm"]["energy_forward_ratio_baseline_over_spec"] == ""
    html = files.html.read_text(encoding="utf-8")
    assert "error: malformed stage record (str)" in html
    assert "Template RTL vs XLS RTL" in html
    assert parse_html(files.html).errors == []
    # no quality summary: no bytes-vs-error plot of one point; the curves that are there
    assert {p.name for p in files.figures} == {"area_by_block.png", "energy_per_element.png",
                                               "training_curves.png"}
    ov = {r["label"]: r for r in read_csv(tmp_path / "r" / "data" / "overview.csv")}
    assert ov["lightnorm"]["accuracy_mean_pct"] == ""
    for fig in files.figures:
        assert fig.read_bytes()[:8] == PNG_MAGIC
    # the baseline alone
    files = build_report([base], tmp_path / "b", baseline="fp32-baseline")
    assert "1.00×" in files.html.read_text(encoding="utf-8")


# --- timing: the clock each design was synthesized at, and whether it was met -----------------
def test_unmet_clock_marked_in_tables_and_csv(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    data = files.html.parent / "data"
    ov = {r["label"]: r for r in read_csv(data / "overview.csv")}
    assert (ov["lightnorm"]["clock_ns"], ov["lightnorm"]["timing_met"]) == ("5.0", "true")
    assert (ov["bf16-standard"]["clock_ns"], ov["bf16-standard"]["timing_met"]) == ("5.0",
                                                                                   "false")
    failed = [r for r in ov.values() if r["label"].endswith("man_bits=5, block=16]")]
    assert failed and failed[0]["timing_met"] == "" and failed[0]["clock_ns"] == ""
    sweep = {r["label"]: r for r in read_csv(data / "sweep_man-block.csv")}
    unmet = {k for k, r in sweep.items() if r["timing_met"] == "false"}
    assert unmet == {"man-block-00000002 [man_bits=5, block=32]"}
    syn = {r["label"]: r for r in read_csv(data / "synthesis.csv")}
    assert syn["bf16-standard"]["timing_met"] == "false"
    html = files.html.read_text(encoding="utf-8")
    # the cell says it (class bad), in the overview, the synthesis and the sweep table
    assert html.count('<td class="bad" title="a design that misses its clock has its power and '
                      'energy computed at a clock its netlist does not reach') >= 5
    assert "NOT met at 5 ns (Fmax 170.9 MHz)" in html
    assert '<td class="ok">met at 5 ns</td>' in html
    # the header says which designs miss their clock
    md = files.markdown.read_text(encoding="utf-8").replace("\\", "")
    assert "| timing | NOT met by 2 of 11 synthesized designs: bf16-standard, " \
           "man-block-00000002 [man_bits=5, block=32] |" in md
    assert "2 of 11 synthesized designs do NOT meet their clock: bf16-standard: NOT met at " \
           "5 ns (Fmax 170.9 MHz); man-block-00000002" in md


def test_predicted_and_measured_critical_path(built: tuple[ReportFiles, Any]) -> None:
    files, _ = built
    syn = {r["label"]: r for r in read_csv(files.html.parent / "data" / "synthesis.csv")}
    assert float(syn["lightnorm"]["predicted_critical_ns"]) == 4.71
    assert float(syn["lightnorm"]["measured_critical_ns"]) == pytest.approx(1e3 / 231.5)
    # a result without a timing plan (older results): no prediction, not 0
    assert syn["fp32-baseline"]["predicted_critical_ns"] == ""
    assert float(syn["fp32-baseline"]["measured_critical_ns"]) == pytest.approx(1e3 / 212.8)
    md = files.markdown.read_text(encoding="utf-8").replace("\\", "")
    assert "| critical path predicted / measured | 4.71 ns (timing library) / 4.32 ns " \
           "(OpenSTA) |" in md
    assert "| critical path predicted / measured | — (timing library) / 4.70 ns (OpenSTA) |" \
        in md
    assert "| timing plan | 2 pipelined units, 1 pipeline register, margin 0.50 ns; predicted " \
           "not to fit: ln_accum (its loop allows at most 0 register(s)" in md


def _ratio_cells(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """label -> header -> Cell of the ratio table of these summaries."""
    from lightnorm.reports.model import check_baseline, normalise
    from lightnorm.reports.tables import ratio_table

    entries = normalise(summaries, "fp32-baseline")
    t = ratio_table(entries, check_baseline(entries, "fp32-baseline")[0])
    return {e.label: {c.header: cell for c, cell in zip(t.columns, row, strict=True)}
            for e, row in zip(entries, t.rows, strict=True)}


AREA_R = "area: baseline / spec (× smaller)"
BYTES_R = "off-chip bytes/elem: spec / baseline (fraction)"
MEM_R = "memory energy: baseline / spec (× less)"


def test_ratio_names_both_clocks_and_marks_an_unmet_side(built: tuple[ReportFiles, Any]) -> None:
    files, summaries = built
    rows = {r["label"]: r for r in read_csv(files.html.parent / "data" / "ratios.csv")}
    bf = rows["bf16-standard"]
    assert (bf["spec_clock_ns"], bf["spec_timing_met"], bf["baseline_clock_ns"],
            bf["baseline_timing_met"]) == ("5.0", "false", "5.0", "true")
    assert float(bf["area_ratio_baseline_over_spec"]) == pytest.approx(22.05 / 9.9)  # raw
    cells = _ratio_cells(summaries)
    assert (cells["lightnorm"]["spec clock"].text, cells["lightnorm"]["spec clock"].cls) == (
        "5 ns, met", "ok")
    assert (cells["bf16-standard"]["spec clock"].text,
            cells["bf16-standard"]["spec clock"].cls) == ("5 ns, NOT met", "bad")
    assert cells["bf16-standard"]["baseline clock"].text == "5 ns, met"
    # the spec misses its clock: area and energy ratios marked, off-chip traffic not
    area = cells["bf16-standard"][AREA_R]
    assert (area.text, area.cls) == ("2.23× (clock not met)", "unmet")
    assert area.note == ("spec: NOT met at 5 ns (Fmax 170.9 MHz) - a design that misses its "
                         "clock has its power and energy computed at a clock its netlist does "
                         "not reach, and meeting the clock would take more registers or larger "
                         "cells")
    assert cells["bf16-standard"][BYTES_R].cls == "num"
    assert cells["bf16-standard"][MEM_R].cls == "num"
    assert (cells["lightnorm"][AREA_R].text, cells["lightnorm"][AREA_R].cls) == ("3.25×", "num")
    html = files.html.read_text(encoding="utf-8")
    assert '<td class="unmet" title="spec: NOT met at 5 ns (Fmax 170.9 MHz) - ' in html
    assert "Ratios against the baseline (fp32-baseline, 5 ns, met)" in html
    # the baseline misses its clock: every clock-dependent ratio of every row is marked
    slow = make_summaries()
    slow[0]["stages"]["synth"]["metrics"].update(timing_met=False, fmax_mhz=190.0)
    cells = _ratio_cells(slow)
    ln = cells["lightnorm"]
    assert ln["baseline clock"].text == "5 ns, NOT met" and ln["spec clock"].cls == "ok"
    assert ln[AREA_R].cls == "unmet" and ln[BYTES_R].cls == "num"
    assert ln[AREA_R].note is not None and ln[AREA_R].note.startswith(
        "baseline: NOT met at 5 ns (Fmax 190.0 MHz) - ")
    both = cells["bf16-standard"][AREA_R].note
    assert both is not None and both.startswith(
        "spec: NOT met at 5 ns (Fmax 170.9 MHz); baseline: NOT met at 5 ns (Fmax 190.0 MHz) - ")
    # different clocks, both met: plain numbers, the note names both clocks
    other = make_summaries()
    other[1]["stages"]["synth"]["metrics"].update(clock_ns=10.0, worst_slack_ns=5.0)
    ln = _ratio_cells(other)["lightnorm"]
    assert ln["spec clock"].text == "10 ns, met" and ln[AREA_R].cls == "num"
    assert ln[AREA_R].note == ("different clocks: the spec at 10 ns, met, the baseline at "
                               "5 ns, met")


def test_clock_sweep_table_and_figure(tmp_path: Path) -> None:
    files = build_report(clock_summaries(), tmp_path / "r", generated=WHEN)
    names = {p.name for p in files.figures}
    # no quality stage in a clock sweep: no (empty) Pareto plots
    assert names == {"area_by_block.png", "energy_per_element.png", "clock_sweep.png"}
    fig = files.html.parent / "figures" / "clock_sweep.png"
    assert fig.stat().st_size > 10_000 and fig.read_bytes()[:8] == PNG_MAGIC
    rows = read_csv(files.html.parent / "data" / "clock_sweep.csv")
    assert len(rows) == 8
    assert [(r["series"], float(r["clock_ns"])) for r in rows] == [
        (sweep, clock) for sweep, pts in CLOCK_POINTS.items()
        for clock in sorted(p[0] for p in pts)]
    by = {(r["series"], float(r["clock_ns"])): r for r in rows}
    for sweep, pts in CLOCK_POINTS.items():
        for clock, fmax, area, cycles in pts:
            r = by[sweep, clock]
            if r["area_um2"] == "":  # the failed point: no number, no zero
                assert (sweep, clock) == ("clock-lightnorm", 10.0)
                assert r["fmax_mhz"] == r["forward_latency_us"] == r["timing_met"] == ""
                continue
            assert float(r["area_um2"]) == area and float(r["fmax_mhz"]) == fmax
            assert float(r["forward_cycles"]) == cycles
            assert float(r["forward_latency_us"]) == pytest.approx(cycles * clock / 1e3)
            assert r["timing_met"] == ("false" if (sweep, clock) == ("clock-lightnorm", 5.0)
                                       else "true")
            assert float(r["predicted_critical_ns"]) == pytest.approx(0.93 * 1e3 / fmax)
            assert float(r["measured_critical_ns"]) == pytest.approx(1e3 / fmax)
    html = files.html.read_text(encoding="utf-8")
    assert 'href="#clock"' in html and "figures/clock_sweep.png" in html
    assert ("registers placed by the operator library of lightnorm.codegen.timing, "
            "characterized on osu018_stdcells.lib, margin 0.50 ns") in html
    assert "Hollow markers: the clock is not met" in html
    assert "Not plotted (no synthesis): clock-lightnorm-00000000000000000001" in html
    assert "the specs were synthesized at different clocks" in html


def test_no_clock_figure_without_a_clock_sweep(built: tuple[ReportFiles, Any],
                                               tmp_path: Path) -> None:
    files, _ = built
    assert "clock_sweep.png" not in {p.name for p in files.figures}
    assert not (files.html.parent / "data" / "clock_sweep.csv").exists()
    # a preset at another clock is not a clock sweep point
    summaries = make_summaries()[:4]
    summaries[1]["stages"]["synth"]["metrics"]["clock_ns"] = 10.0
    other = build_report(summaries, tmp_path / "r")
    assert "clock_sweep.png" not in {p.name for p in other.figures}
    assert figures.clock_figure([], "x") is None


@pytest.mark.parametrize("name,base", [("clock-lightnorm", "lightnorm"),
                                       ("clock-fp32-baseline", "fp32-baseline")])
def test_shipped_clock_sweeps_expand_to_four_clocks(name: str, base: str) -> None:
    from lightnorm.flow.sweep import load_sweep

    root = Path(__file__).parent.parent / "specs" / "sweeps"
    sweep = load_sweep(root / f"{name}.toml")
    assert sweep.name == name and sweep.base.name == base
    assert "synth" in sweep.stages and sweep.clock_ns is None  # each point's own clock
    assert not sweep.invalid
    assert [p.coords for p in sweep.points] == [{"hw.clock_ns": c}
                                                for c in (20.0, 10.0, 7.0, 5.0)]
    for p in sweep.points:
        assert p.spec is not None and p.spec.hw.clock_ns == p.coords["hw.clock_ns"]
        # nothing else differs from the preset
        assert p.spec.storage == sweep.base.storage and p.spec.hw.lanes == sweep.base.hw.lanes


def test_flow_terminal_table_marks_an_unmet_clock() -> None:
    from lightnorm.cli.flow import table_caption, table_rows

    summaries = make_summaries()[:4]
    head, rows = table_rows(summaries, "fp32-baseline")
    by = {r[0]: dict(zip(head, r, strict=True)) for r in rows}
    assert by["lightnorm"]["timing"] == "5 ns, met" and by["lightnorm"]["x area"] == "3.25"
    assert by["bf16-standard"]["timing"] == "5 ns, NOT met"
    assert by["bf16-standard"]["x area"] == "2.23!" and by["bf16-standard"]["x E fwd"] == "2.37!"
    assert "fp32-baseline (5 ns, met)" in table_caption(summaries, "fp32-baseline")
    summaries[0]["stages"]["synth"]["metrics"]["timing_met"] = False
    _, rows = table_rows(summaries, "fp32-baseline")
    assert all(r[head.index("x area")].endswith("!") for r in rows)
    assert "fp32-baseline (5 ns, NOT met)" in table_caption(summaries, "fp32-baseline")


# --- the output pinned: the same input gives the same pages and CSVs -----------------------------
PINNED = Path(__file__).parent / "data" / "report"


def pinned_cases() -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Inputs whose output is committed under tests/data/report/<case>/ (written by
    ``python -m tests.test_report`` from the worktree root)."""
    return {
        "sweep": (make_summaries(), {"title": "Test report"}),
        "xls": (xls_summaries(), {}),
        "malformed": ([make_summaries()[0], malformed_summary()], {"title": "Odd"}),
        "clock": (clock_summaries(), {"title": "Clock sweeps"}),
    }


def _build_pinned(case: str, out: Path) -> ReportFiles:
    summaries, kw = pinned_cases()[case]
    return build_report(summaries, out, generated=WHEN, **kw)


def _text_outputs(root: Path) -> dict[str, str]:
    """Every page and CSV under ``root`` (figures are PNGs whose bytes depend on matplotlib's
    version: only their names are pinned, in figures.txt)."""
    out = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
           for p in sorted(root.rglob("*")) if p.suffix in (".html", ".md", ".csv")}
    out["figures.txt"] = "".join(f"{p.name}\n" for p in sorted((root / "figures").glob("*")))
    return out


@pytest.mark.parametrize("case", sorted(pinned_cases()))
def test_output_matches_pinned_copy(case: str, tmp_path: Path) -> None:
    _build_pinned(case, tmp_path / "r")
    got = _text_outputs(tmp_path / "r")
    want = {p.relative_to(PINNED / case).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted((PINNED / case).rglob("*")) if p.is_file()}
    assert sorted(got) == sorted(want)
    for name, text in got.items():
        assert text == want[name], f"{case}/{name} differs from tests/data/report/{case}/{name}"


if __name__ == "__main__":  # rewrite the pinned copies (review the diff before committing it)
    import shutil
    import tempfile

    for name in pinned_cases():
        with tempfile.TemporaryDirectory() as tmp:
            _build_pinned(name, Path(tmp) / "r")
            shutil.rmtree(PINNED / name, ignore_errors=True)
            for rel, text in _text_outputs(Path(tmp) / "r").items():
                (PINNED / name / rel).parent.mkdir(parents=True, exist_ok=True)
                (PINNED / name / rel).write_text(text, encoding="utf-8")


def test_flow_report_is_kept_when_nothing_it_shows_changed(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached flow rerun does not redraw its report (seconds of figures): the report is
    rebuilt when the results, the options or a file of it change, kept otherwise."""
    from lightnorm.cli import flow as cli_flow
    from lightnorm.reports import report as rep

    built: list[Path] = []
    real = rep.build_report

    def counting(*args: Any, **kw: Any) -> ReportFiles:
        built.append(args[1])
        return real(*args, **kw)

    monkeypatch.setattr(rep, "build_report", counting)
    out = tmp_path / "run" / "report"
    summaries = clean_summaries()
    first = cli_flow._write_report(summaries, out, "fp32-baseline", "t")
    assert len(built) == 1 and Path(first["html"]).is_file()
    assert cli_flow._write_report(summaries, out, "fp32-baseline", "t") == first
    assert len(built) == 1
    changed = copy.deepcopy(summaries)
    changed[0]["stages"]["synth"]["metrics"]["area_um2"] *= 1.5
    cli_flow._write_report(changed, out, "fp32-baseline", "t")
    assert len(built) == 2
    cli_flow._write_report(changed, out, "fp32-baseline", "another title")
    assert len(built) == 3
    (out / "report.md").unlink()
    cli_flow._write_report(changed, out, "fp32-baseline", "another title")
    assert len(built) == 4 and (out / "report.md").is_file()
    cli_flow._write_report(changed, out, "fp32-baseline", "another title")
    assert len(built) == 4
