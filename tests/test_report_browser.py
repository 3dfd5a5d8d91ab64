"""The report in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
installed by scripts/setup.sh) driven by Selenium, on a report that ``lightnorm report`` writes
from a results store made here (the synthetic summaries of tests/test_report.py: no
synthesis, no training), in the folder layout and as one file (``--single-file``).

Checked on the rendered page: every figure loads (``naturalWidth > 0``), the page requests
nothing outside its folder (the Chrome DevTools Protocol's ``Network.requestWillBeSent``
events, read from chromedriver's performance log), and the overview table is there with a row
per spec and the accuracy columns. The checker itself is tested on a page that breaks each
rule. Without Chromium or Selenium the tests fail with a line saying what to install: they
are not skipped, so CI (which runs scripts/setup.sh) cannot pass without running them.

``python -m tests.test_report_browser [PNG]`` writes the screenshot of docs/report.md
(default docs/report.png).
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from lightnorm.cli.core import main
from lightnorm.flow.store import ResultStore

from .test_report import PNG_MAGIC, make_summaries

pytestmark = pytest.mark.browser

#: the browser and its driver, as Debian's chromium and chromium-driver install them
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"
INSTALL = ("the report's browser test needs headless Chromium and Selenium: apt-get install "
           "chromium chromium-driver, pip install 'lightnorm[test]' (bash scripts/setup.sh "
           "does both)")
#: the window the page is rendered in (the screenshot's size)
WINDOW = (1600, 2200)
#: how long a page may take to load its figures
LOAD_TIMEOUT_S = 30.0


def _chromium() -> tuple[str, str]:
    """Paths of the browser and its driver; the test fails (not skips) when one is missing."""
    browser = next((p for name in BROWSERS if (p := shutil.which(name))), None)
    driver = shutil.which(DRIVER)
    if browser is None or driver is None:
        missing = [n for n, p in (("chromium", browser), (DRIVER, driver)) if p is None]
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL}", pytrace=False)
    return browser, driver


def start_browser() -> Any:
    """A headless Chromium with chromedriver's performance log (DevTools network events)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL}", pytrace=False)
    browser, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # an explicit driver path: Selenium Manager never looks for (or downloads) another one
    return webdriver.Chrome(options=opts, service=Service(driver))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    d = start_browser()
    try:
        yield d
    finally:
        d.quit()


@dataclass
class Rendered:
    """What the browser saw of one page."""

    requests: list[str]          # every URL the page asked for (DevTools network events)
    images: list[dict[str, Any]]  # src (first 80 characters), complete, naturalWidth
    overview_rows: int
    overview_headers: list[str]


def render(driver: Any, page: Path) -> Rendered:
    """Load ``page`` and wait until every image finished loading (or failed)."""
    driver.get_log("performance")  # drop the events of earlier pages
    driver.get(page.resolve().as_uri())
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while not driver.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(i => i.complete)"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{page}: figures still loading after {LOAD_TIMEOUT_S} s")
        time.sleep(0.1)
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            requests.append(msg["params"]["request"]["url"])
    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.getAttribute('src').slice(0, 80),"
        " complete: i.complete, naturalWidth: i.naturalWidth}))")
    rows, headers = driver.execute_script(
        "const t = document.querySelector('section#overview table.data');"
        "if (!t) return [-1, []];"
        "return [t.tBodies[0].rows.length,"
        " Array.from(t.tHead.rows[0].cells).map(c => c.textContent)];")
    return Rendered(requests, images, rows, headers)


def outside(requests: Sequence[str], page: Path, *, one_file: bool = False) -> list[str]:
    """The requests that leave the page's folder (``one_file``: that are not the page itself):
    another scheme or host, or a file outside the folder. ``data:`` URIs are inside."""
    root = page.resolve().parent
    bad = []
    for url in requests:
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            bad.append(url)
            continue
        path = Path(unquote(parts.path)).resolve()
        if (path != page.resolve()) if one_file else not path.is_relative_to(root):
            bad.append(url)
    return bad


def broken_images(seen: Rendered) -> list[str]:
    return [i["src"] for i in seen.images if not i["complete"] or i["naturalWidth"] <= 0]


# --- the report, from a results store ---------------------------------------------------------
def store_from_summaries(directory: Path, summaries: Sequence[Mapping[str, Any]]) -> None:
    """A results store holding ``summaries`` as the flow and a sweep record them (a stage
    that was skipped has no row: the flow records none)."""
    store = ResultStore(directory)
    for s in summaries:
        toml = f'name = "{s["spec"]}"\n'
        store.add_member(s["sweep"] or "flow", s["spec_hash"], s["spec"], toml,
                         bool(s["preset"]), s["point"])
        for stage, rec in s["stages"].items():
            if not isinstance(rec, Mapping) or rec.get("status") not in ("ok", "failed",
                                                                         "error"):
                continue
            store.record(spec_hash=s["spec_hash"], spec_name=s["spec"], spec_toml=toml,
                         stage=stage, stage_key=f"{s['spec_hash']}:{stage}",
                         tool_versions=rec.get("tool_versions") or {}, inputs={},
                         status=rec["status"], reason=rec.get("reason"),
                         metrics=rec.get("metrics"), started="2026-11-25T16:00:00Z",
                         duration_s=float(rec.get("duration_s") or 0.0), version="test")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("browser")
    store_from_summaries(d / "run", make_summaries())
    assert main(["report", str(d / "run"), "-o", str(d / "folder")]) == 0
    assert main(["report", str(d / "run"), "-o", str(d / "single"), "--single-file"]) == 0
    return {"folder": d / "folder" / "report.html", "single": d / "single" / "report.html"}


def _check_report(seen: Rendered, page: Path, one_file: bool) -> None:
    specs = len(make_summaries())
    assert seen.overview_rows == specs, "the overview table is missing or incomplete"
    assert "test accuracy (%, mean ± std)" in seen.overview_headers
    assert "area (mm²)" in seen.overview_headers
    assert len(seen.images) >= 6 and broken_images(seen) == [], broken_images(seen)
    assert outside(seen.requests, page, one_file=one_file) == []
    assert seen.requests[0] == page.resolve().as_uri()


def test_folder_report_loads_every_figure_from_its_folder(browser: Any,
                                                          reports: dict[str, Path]) -> None:
    page = reports["folder"]
    seen = render(browser, page)
    _check_report(seen, page, one_file=False)
    figures = sorted(p.name for p in (page.parent / "figures").iterdir())
    loaded = sorted(Path(urlsplit(u).path).name for u in seen.requests if "/figures/" in u)
    assert loaded == figures  # each figure file requested, from figures/
    assert {i["src"] for i in seen.images} == {f"figures/{f}" for f in figures}


def test_single_file_report_requests_nothing_but_itself(browser: Any,
                                                        reports: dict[str, Path]) -> None:
    page = reports["single"]
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]
    seen = render(browser, page)
    _check_report(seen, page, one_file=True)
    assert all(i["src"].startswith("data:image/png;base64,") for i in seen.images)
    # the same figures as the folder layout
    folder = reports["folder"].parent / "figures"
    assert len(seen.images) == len(list(folder.iterdir()))


#: a valid 1x1 PNG
ONE_PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Erk"
    "Jggg==")


def test_the_checks_catch_a_broken_page(browser: Any, tmp_path: Path) -> None:
    """A page with a missing figure, an image on another host and one outside its folder:
    the checks name all three (they can fail)."""
    (tmp_path / "site" / "figures").mkdir(parents=True)
    for where in (tmp_path / "site" / "figures" / "ok.png", tmp_path / "outside.png"):
        where.write_bytes(ONE_PIXEL_PNG)
    page = tmp_path / "site" / "report.html"
    page.write_text('<!DOCTYPE html><html><body>'
                    '<img src="figures/ok.png"><img src="figures/missing.png">'
                    '<img src="http://example.invalid/x.png"><img src="../outside.png">'
                    '</body></html>', encoding="utf-8")
    seen = render(browser, page)
    assert seen.overview_rows == -1  # no overview table
    assert sorted(broken_images(seen)) == ["figures/missing.png",
                                           "http://example.invalid/x.png"]
    assert outside(seen.requests, page) == ["http://example.invalid/x.png",
                                            (tmp_path / "outside.png").as_uri()]
    assert len(outside(seen.requests, page, one_file=True)) == 4  # all but the page itself


def screenshot(out: Path) -> None:
    """The report of tests/test_report.py's clean summaries (presets and a sweep, every stage
    ok) from its top to the end of the trade-off plots, as a PNG taken by headless Chromium
    (the Chrome DevTools Protocol's Page.captureScreenshot, beyond the window)."""
    import tempfile

    from .test_report import clean_summaries

    with tempfile.TemporaryDirectory() as tmp:
        store_from_summaries(Path(tmp) / "run", clean_summaries())
        assert main(["report", str(Path(tmp) / "run"), "-o", str(Path(tmp) / "r")]) == 0
        driver = start_browser()
        try:
            render(driver, Path(tmp) / "r" / "report.html")
            bottom = driver.execute_script(
                "const s = document.querySelector('section#tradeoffs');"
                "return s.getBoundingClientRect().bottom + window.scrollY;")
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": bottom + 10,
                         "scale": 1}})
        finally:
            driver.quit()
    png = base64.b64decode(shot["data"])
    assert png[:8] == PNG_MAGIC
    out.write_bytes(png)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else
                  Path(__file__).parent.parent / "docs" / "report.png")
    screenshot(target)
    print(f"screenshot: {target}")
