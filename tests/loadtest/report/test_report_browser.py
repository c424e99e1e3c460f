"""report.html in a real headless browser (Debian's chromium + chromedriver via selenium):
no console errors, no network request, every chart drawn and non-empty, the
recommendation in the DOM, readable in light and dark. Screenshots are kept as test
artifacts (``$TFSUITE_TEST_ARTIFACTS``, default ``build/test-artifacts/report/``).

Without chromium the test skips with the reason, except under ``CI=true`` where it fails:
``.ci/run`` installs chromium and chromium-driver.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_runs import CLASSIFIER, DETECTOR, build_results

from tfsuite.loadtest.report import load_runs, write_report
from tfsuite.loadtest.report.charts import CHART_KINDS

REPO = Path(__file__).resolve().parents[3]


def _need(what: str) -> None:
    message = f"report browser test needs {what}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: .ci/run must install chromium and chromium-driver)")
    print(f"SKIPPED: {message}")
    pytest.skip(f"{message}: apt-get install -y chromium chromium-driver")


def _artifacts() -> Path:
    root = Path(os.environ.get("TFSUITE_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _need("chromium and chromedriver on PATH")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: Selenium Manager would try to download one.
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _requests(driver: object) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[attr-defined]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _screenshot(driver: object, path: Path) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(1280, min(int(height) + 40, 16000))  # type: ignore[attr-defined]
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    driver.set_window_size(1280, 1000)  # type: ignore[attr-defined]
    return path


_CHART_FACTS = """
return Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.id, missing: f.dataset.missing === 'true', width: box.width, height: box.height,
          marks: svg ? svg.querySelectorAll('path, use, rect').length : 0,
          texts: svg ? svg.querySelectorAll('text').length : 0};
});
"""

_THEME = """
const t = document.querySelector('figure.chart svg text');
return {page: getComputedStyle(document.documentElement).backgroundColor,
        text: getComputedStyle(document.body).color, chartText: getComputedStyle(t).fill};
"""


@pytest.mark.slow
def test_report_in_headless_chromium(browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    runs = load_runs([build_results(repeats=2).write(tmp_path / "run" / "results.json")])
    files = write_report(runs, tmp_path / "out")
    url = files.html.resolve().as_uri()
    driver = browser
    driver.get("about:blank")  # type: ignore[attr-defined]
    _requests(driver)  # drain what the browser itself loaded at start-up (new-tab page)
    driver.get(url)  # type: ignore[attr-defined]
    assert driver.execute_script("return document.readyState") == "complete"  # type: ignore[attr-defined]

    charts = driver.execute_script(_CHART_FACTS)  # type: ignore[attr-defined]
    expected = {
        f"chart-{m.replace('_', '-')}-{k}" for m in (CLASSIFIER, DETECTOR) for k in CHART_KINDS
    }
    assert {c["id"] for c in charts} == expected
    for chart in charts:
        assert not chart["missing"], chart
        assert chart["width"] > 300 and chart["height"] > 150, chart  # laid out, visible
        assert chart["marks"] >= 8 and chart["texts"] >= 4, chart  # something drawn, labelled

    verdicts = [
        li.text
        for li in driver.find_elements(By.CSS_SELECTOR, "#recommendation li.verdict")  # type: ignore[attr-defined]
    ]
    expected_verdicts = [line.text for line in files.recommendation if line.kind == "verdict"]
    assert verdicts == expected_verdicts and len(verdicts) == 2
    assert verdicts[0].startswith(f"Serve v2 weight_quant for {CLASSIFIER}")

    light = driver.execute_script(_THEME)  # type: ignore[attr-defined]
    shots = _artifacts()
    print(f"screenshot: {_screenshot(driver, shots / 'report-light.png')}")
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    dark = driver.execute_script(_THEME)  # type: ignore[attr-defined]
    print(f"screenshot: {_screenshot(driver, shots / 'report-dark.png')}")
    # Page and chart text follow the scheme: dark text on light, light text on dark.
    assert light["page"] == "rgb(255, 255, 255)" and dark["page"] == "rgb(13, 17, 23)"
    assert light["chartText"] == light["text"] == "rgb(31, 35, 40)"
    assert dark["chartText"] == dark["text"] == "rgb(230, 237, 243)"

    problems = [
        e
        for e in driver.get_log("browser")  # type: ignore[attr-defined]
        if e["level"] in ("SEVERE", "WARNING")
    ]
    assert problems == []
    assert set(_requests(driver)) == {url}  # the page itself, nothing else
