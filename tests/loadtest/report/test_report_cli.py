"""``tfsuite report``: one run, merged runs, and every kind of bad input in one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from report_runs import CLASSIFIER, DETECTOR, build_results

from tfsuite.cli import main
from tfsuite.loadtest.report.charts import CHART_KINDS


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(["report", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_one_run_renders_html_and_markdown_with_the_same_recommendation(
    write_run: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_run()
    code, out, err = _report([str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    html = (tmp_path / "out" / "report.html").read_text()
    md = (tmp_path / "out" / "report.md").read_text()
    verdicts = [line[2:] for line in out.splitlines() if line.startswith("→ ")]
    assert len(verdicts) == 2  # one per model
    for verdict in verdicts:
        assert verdict in html.replace("&#x27;", "'")
        assert f"**{verdict}**" in md
    for model in (CLASSIFIER, DETECTOR):
        for kind in CHART_KINDS:
            anchor = f'id="chart-{model.replace("_", "-")}-{kind}" data-chart="{kind}">'
            assert anchor in html, f"{model} {kind} not drawn"
    assert 'data-missing="true"' not in html
    # Self-contained: no script, no source or link attribute, no url() but the SVGs' own
    # in-page references (clip paths). The run's metrics URL is printed as text only.
    for needle in ("<script", " src=", "<link", "@import", 'href="http'):
        assert needle not in html, needle
    assert not re.search(r"url\((?!#)", html)
    assert "<h3>Every step</h3>" in html and "### Every step" in md
    steps_md = md.split("### Every step")[1].split("###")[0]
    assert steps_md.count("\n| mobilenet_v2 | v1 original | closed |") == 5  # 5 closed steps
    assert steps_md.count("\n| ") == 1 + 2 * 7 + 3 * 7  # header + every step of 5 versions


def test_merging_two_runs_gives_one_report_with_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu = build_results(seed=1, hostname="cpu-box").write(tmp_path / "cpu" / "results.json")
    gpu = build_results(seed=2, hostname="gpu-box", gpu="NVIDIA T4").write(
        tmp_path / "gpu" / "results.json"
    )
    code, out, err = _report([str(cpu), str(gpu), "--out", str(tmp_path / "merged")], capsys)
    assert code == 0, err
    html = (tmp_path / "merged" / "report.html").read_text()
    assert "run A: compare on cpu-box (2 CPU cores)" in html
    assert "run B: compare on gpu-box (NVIDIA T4)" in html
    assert "10 versions from 2 runs" in html  # (run, model, version) keys stay apart
    for name in ("A v1 original", "B v1 original", "A v2 weight_quant", "B v3 fp16_weights"):
        assert f'<td class="text">{name}</td>' in html  # versions table
        assert f">{name}</text>" in html  # a legend entry in the charts (SVG text)
    assert f"Across runs, {CLASSIFIER}: " in out
    assert out.count("→ Serve ") == 4  # a verdict per (run, model)


def test_a_file_from_another_tool_names_the_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads(build_results().to_json())
    del raw["run"]["server"]
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps(raw))
    code, _, err = _report([str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err == f"error: {bad}: missing key 'run.server'\n"
    # Locust's own stats JSON (a list), and a newer schema.
    locust = tmp_path / "stats.json"
    locust.write_text('[{"name": "predict", "num_requests": 10}]')
    code, _, err = _report([str(locust), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a tfsuite results.json" in err
    raw = json.loads(build_results().to_json())
    raw["schema"] = "tfsuite.results/9"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(raw))
    code, _, err = _report([str(newer), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "results schema 'tfsuite.results/9' is not 'tfsuite.results/1'" in err
    assert not (tmp_path / "out" / "report.html").exists()


def test_an_incomplete_run_renders_with_the_banner(
    write_run: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _report([str(write_run(complete=False)), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    html = (tmp_path / "o" / "report.html").read_text()
    assert '<div class="banner" role="alert"' in html
    assert "Incomplete run: compare on ci-runner" in html and "interrupted (Ctrl-C)" in html
    md = (tmp_path / "o" / "report.md").read_text()
    assert "> **INCOMPLETE RUN** — compare on ci-runner" in md
    # ... and a complete run has none.
    code, _, _ = _report([str(write_run()), "--out", str(tmp_path / "c")], capsys)
    assert 'class="banner"' not in (tmp_path / "c" / "report.html").read_text()


def test_an_empty_run_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = build_results()
    results.steps = []
    empty = results.write(tmp_path / "empty.json")
    code, _, err = _report([str(empty), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err == (
        f"error: {empty}: empty run: no measured steps; nothing to report (re-run the measurement)\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_dir_fails_before_rendering(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_run()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # In a fresh interpreter: the error is one line, and matplotlib was never imported, so no
    # chart was drawn. (A file as parent fails for root too, unlike a chmod.)
    script = (
        "import sys\n"
        "from tfsuite.cli import main\n"
        "try:\n"
        f"    main(['report', {str(path)!r}, '--out', {str(blocker / 'out')!r}])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "exit 2 False"
    assert done.stderr == (
        f"error: cannot write the report to {str(blocker / 'out')!r}: Not a directory; "
        "choose another --out directory\n"
    )
