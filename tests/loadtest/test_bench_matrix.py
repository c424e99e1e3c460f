"""End-to-end ``tfsuite bench`` runs on a real classifier base path: the 2 variants x 2 batch
sizes x (tf, onnxruntime) matrix, a deliberately broken variant recorded as failed without
stopping the matrix, the tables, traces, logs, plot and bench.json, the seed 000 printout,
bad-input errors and the assignment.csv path."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from tfsuite.cli import main
from tfsuite.export.manifest import TensorSpecInfo, VariantRecord, VariantsManifest
from tfsuite.loadtest.offline.cli import bench
from tfsuite.loadtest.offline.report import COLUMNS

pytestmark = pytest.mark.slow

BATCHES = "1,2"
FAST = ["--warmup", "2", "--iterations", "5", "--no-progress"]


class _TinyClassifier(tf.Module):
    """Conv -> pool -> dense softmax; ``quantized`` stores int8 weights dequantized in-graph."""

    def __init__(self, quantized: bool) -> None:
        rng = np.random.default_rng(0)
        conv = rng.normal(0, 0.2, (3, 3, 3, 8)).astype(np.float32)
        dense = rng.normal(0, 0.2, (8, 10)).astype(np.float32)
        if quantized:
            self.scales = [float(np.abs(w).max() / 127) for w in (conv, dense)]
            self.q = [
                tf.Variable(np.round(w / s).astype(np.int8))
                for w, s in zip((conv, dense), self.scales, strict=True)
            ]
        else:
            self.w = [tf.Variable(conv), tf.Variable(dense)]
        self.quantized = quantized

    def weights(self) -> list[tf.Tensor]:
        if self.quantized:
            return [tf.cast(q, tf.float32) * s for q, s in zip(self.q, self.scales, strict=True)]
        return [tf.convert_to_tensor(w) for w in self.w]

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="input")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        conv, dense = self.weights()
        h = tf.nn.relu(tf.nn.conv2d(x, conv, 1, "SAME"))
        return {"probabilities": tf.nn.softmax(tf.reduce_mean(h, axis=[1, 2]) @ dense)}


def _own_classifier_base(base: Path) -> Path:
    """A base path in the exporter's layout, used until the shared ``classifier_base`` exists."""
    records = []
    for version, variant, precision, quantized in (
        (1, "original", "fp32", False),
        (2, "weight_quant", "int8-weights", True),
    ):
        module = _TinyClassifier(quantized)
        tf.saved_model.save(
            module, str(base / str(version)), signatures={"serving_default": module.serve}
        )
        size = sum(p.stat().st_size for p in (base / str(version)).rglob("*") if p.is_file())
        records.append(
            VariantRecord(
                version=version,
                variant=variant,
                precision=precision,
                status="ok",
                size_bytes=size,
                node_count={"Conv2D": 1, "MatMul": 1, "Relu": 1},
                conversion_seconds=0.5 * version,
            )
        )
    records.append(
        VariantRecord(
            version=3,
            variant="trt_fp16",
            precision="fp16",
            status="skipped",
            reason="TensorFlow is built without TensorRT",
        )
    )
    VariantsManifest(
        model_name="tiny_classifier",
        source="in-test",
        source_format="saved_model",
        source_sha256="0" * 64,
        tf_version=tf.__version__,
        kind="classifier",
        inputs=[TensorSpecInfo(name="input", dtype="float32", shape=[None, 32, 32, 3])],
        outputs=[TensorSpecInfo(name="probabilities", dtype="float32", shape=[None, 10])],
        variants=records,
    ).save(base)
    return base


@pytest.fixture(scope="session")
def bench_classifier_base(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The bundled classifier's base path when the shared fixture exists, else a tiny one."""
    try:
        return Path(request.getfixturevalue("classifier_base"))
    except pytest.FixtureLookupError:
        return _own_classifier_base(tmp_path_factory.mktemp("bench_classifier"))


@pytest.fixture(scope="session")
def bench_base_with_broken(
    bench_classifier_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the classifier base path plus a variant whose SavedModel is corrupt."""
    base = tmp_path_factory.mktemp("bench_broken") / "model"
    shutil.copytree(bench_classifier_base, base)
    broken = base / "9"
    shutil.copytree(base / "1", broken)
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    manifest = VariantsManifest.load(base)
    manifest.upsert(
        VariantRecord(version=9, variant="broken", precision="fp32", status="ok", size_bytes=1)
    )
    manifest.save(base)
    return base


@pytest.fixture(scope="session")
def matrix_run(
    bench_base_with_broken: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench_out")
    result = CliRunner().invoke(
        bench,
        [
            "--base-path",
            str(bench_base_with_broken),
            "--variants",
            "original,weight_quant,broken",
            "--batch-sizes",
            BATCHES,
            "--backends",
            "tf,onnxruntime",
            "--out",
            str(out),
            "--display-every",
            "5",
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "table.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_bench_matrix_table_has_every_column(matrix_run: tuple[Path, str]) -> None:
    out, _ = matrix_run
    rows = _rows(out)
    assert list(rows[0]) == list(COLUMNS)
    ok = [r for r in rows if r["variant"] in ("original", "weight_quant")]
    assert len(ok) == 2 * 2 * 2  # variants x backends x batch sizes
    assert {(r["variant"], r["backend"], r["batch_size"]) for r in ok} == {
        (v, b, bs)
        for v in ("original", "weight_quant")
        for b in ("tf", "onnxruntime")
        for bs in ("1", "2")
    }
    for r in ok:
        assert r["status"] == "ok", r
        assert r["version"] == {"original": "1", "weight_quant": "2"}[r["variant"]]
        assert r["precision"] and r["model"]
        p50, p90, p99, mean, tmean, mn = (
            float(r[k])
            for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "trimmed_mean_ms", "min_ms")
        )
        assert 0 < mn <= p50 <= p90 <= p99
        assert mn <= mean and mn <= tmean
        assert int(r["iterations"]) == 5
        total = float(r["total_time_s"])
        assert total > 0
        # images/s is seed 000's batch * iterations / total time (to the table's rounding)
        assert float(r["images_per_sec"]) == pytest.approx(
            int(r["batch_size"]) * 5 / total, rel=0.02
        )
        assert float(r["size_mb"]) > 0 and int(r["nodes"]) > 0 and float(r["conversion_s"]) >= 0
        assert float(r["backend_conversion_s"]) >= 0
        if r["backend"] == "onnxruntime":  # the converted model agrees with TF on a seeded input
            assert float(r["backend_max_abs_err"]) < 1e-4
        else:
            assert r["backend_max_abs_err"] == ""
        assert float(r["cpu_process_pct"]) >= 0 and 0 <= float(r["cpu_system_pct"]) <= 100
        assert r["gpu_util_pct"] == "" and r["gpu_mem_mb"] == ""  # no GPU here: absent, not zero
        assert r["error"] == "" and Path(r["log"]).is_file()
    onnx_conversion = [
        float(r["backend_conversion_s"]) for r in ok if r["backend"] == "onnxruntime"
    ]
    assert max(onnx_conversion) > 0  # tf2onnx really ran
    assert list(out.glob("onnx/*.onnx"))


def test_bench_broken_variant_fails_without_stopping_matrix(matrix_run: tuple[Path, str]) -> None:
    out, output = matrix_run
    rows = _rows(out)
    broken = [r for r in rows if r["variant"] == "broken"]
    assert len(broken) == 4
    for r in broken:
        assert r["status"] == "failed"
        assert (
            r["images_per_sec"] == "0" and r["p99_ms"] == "-1" and r["mean_ms"] == "-1"
        )  # seed 003's markers
        assert r["error"] and "\n" not in r["error"]
        log_text = Path(r["log"]).read_text()
        assert "Traceback" in log_text
    # The cases after the broken variant (none here by order) and before it all ran.
    assert sum(r["status"] == "ok" for r in rows) == 8
    assert "failed:" in output


def test_bench_prints_seed000_format(matrix_run: tuple[Path, str]) -> None:
    _, output = matrix_run
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("results of ")]
    assert len(starts) == 8
    i = starts[0]
    assert lines[i - 1].startswith("    step 5/5, iter_time(ms)=")  # --display-every 5
    keys = [line.split(":")[0] for line in lines[i + 1 : i + 7]]
    assert keys == [
        "    images/sec",
        "    99th_percentile(ms)",
        "    total_time(s)",
        "    latency_mean(ms)",
        "    latency_median(ms)",
        "    latency_min(ms)",
    ]
    for line in lines[i + 1 : i + 7]:
        float(line.split(": ")[1])
    assert "measurement overhead:" in output


def test_bench_traces_are_chrome_trace_files(matrix_run: tuple[Path, str]) -> None:
    out, _ = matrix_run
    traces = sorted((out / "traces").glob("*.json"))
    assert len(traces) == 8
    doc = json.loads(traces[0].read_text())
    events = doc["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    for e in spans:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e)
    names = [e["name"] for e in spans]
    assert "warmup" in names and sum(n.startswith("iteration ") for n in names) == 5
    case = spans[0]
    for e in spans[1:]:  # every span nests inside the case span
        assert case["ts"] <= e["ts"] and e["ts"] + e["dur"] <= case["ts"] + case["dur"] + 1e-3


def test_bench_json_markdown_and_plot(matrix_run: tuple[Path, str]) -> None:
    out, _ = matrix_run
    doc = json.loads((out / "bench.json").read_text())
    assert doc["environment"]["tensorflow"] == tf.__version__
    assert doc["environment"]["cpu_count_logical"] >= 1
    assert doc["measurement_overhead"]["ns_per_iteration"] > 0
    assert 0 < doc["measurement_overhead"]["percent_of_fastest_case"] < 100
    ok = [c for c in doc["cases"] if c["stats"]]
    assert len(ok) == 8 and all(len(c["latencies_ns"]) == 5 for c in ok)
    assert all(min(c["latencies_ns"]) / 1e6 == pytest.approx(c["stats"]["min_ms"]) for c in ok)
    md = (out / "table.md").read_text()
    assert md.count("\n| tiny_classifier") + md.count("\n| mobilenet_v2") == 12
    assert "measurement overhead:" in md
    png = (out / "throughput.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_tf_trt_and_skipped_variants_are_recorded(
    bench_classifier_base: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        bench,
        [
            "--base-path",
            str(bench_classifier_base),
            "--variants",
            "original,trt_fp16",
            "--batch-sizes",
            "1",
            "--backends",
            "tf-trt",
            "--out",
            str(tmp_path),
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "built without TensorRT" in rows[0]["error"]


def _cli_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *args])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def test_bench_bad_input_is_one_line_error(
    bench_classifier_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--base-path", str(bench_classifier_base), "--out", str(tmp_path / "o")]
    assert "batch size '0' is not a positive integer" in _cli_error(
        capsys, [*base, "--batch-sizes", "1,0"]
    )
    assert "unknown backend 'trt'" in _cli_error(capsys, [*base, "--backends", "tf,trt"])
    assert "variant 'fp64' is not in" in _cli_error(capsys, [*base, "--variants", "fp64"])
    assert "version 7 is not in" in _cli_error(capsys, [*base, "--versions", "1,7"])
    assert "--versions or --variants, not both" in _cli_error(
        capsys, [*base, "--versions", "1", "--variants", "original"]
    )
    assert "exactly one of --base-path" in _cli_error(capsys, ["--out", str(tmp_path)])
    assert "--iterations or --duration, not both" in _cli_error(
        capsys, [*base, "--iterations", "5", "--duration", "1s"]
    )
    bad_csv = tmp_path / "assignment.csv"
    bad_csv.write_text("model,batch_sizes,gpu\n")
    assert "assignment.csv:1: unknown column 'gpu'" in _cli_error(
        capsys, ["--assignment", str(bad_csv), "--out", str(tmp_path)]
    )
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_bench_dynamic_input_needs_input_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Dynamic(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 4], tf.float32, name="features")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"total": tf.reduce_sum(x, axis=[1, 2])}

    module = Dynamic()
    tf.saved_model.save(
        module, str(tmp_path / "m" / "1"), signatures={"serving_default": module.serve}
    )
    args = [
        "--base-path",
        str(tmp_path / "m"),
        "--batch-sizes",
        "2",
        "--out",
        str(tmp_path / "o"),
        *FAST,
    ]
    err = _cli_error(capsys, args)
    assert (
        "input 'features'" in err
        and "dims 1 are dynamic" in err
        and "--input-shape features:1xNx4" in err
    )
    result = CliRunner().invoke(bench, [*args, "--input-shape", "features:1x6x4"])
    assert result.exit_code == 0, result.output
    [row] = _rows(tmp_path / "o")
    assert row["status"] == "ok" and row["variant"] == "v1"


def test_bench_assignment_runs_every_line(bench_classifier_base: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "assignment.csv"
    csv_path.write_text(
        f'model,name,batch_sizes,variants\n{bench_classifier_base},clf,"1,3",weight_quant\n'
    )
    result = CliRunner().invoke(
        bench, ["--assignment", str(csv_path), "--out", str(tmp_path / "o"), *FAST]
    )
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "o")
    assert [
        (r["model"], r["variant"], r["backend"], r["batch_size"], r["status"]) for r in rows
    ] == [
        ("clf", "weight_quant", "tf", "1", "ok"),
        ("clf", "weight_quant", "tf", "3", "ok"),
    ]


def test_bench_assignment_exports_what_is_missing(
    classifier_saved_model: Path, tmp_path: Path
) -> None:
    """A SavedModel source is exported into <out>/models/<name> first; a rerun reuses it."""
    csv_path = tmp_path / "assignment.csv"
    csv_path.write_text(
        f"model,name,batch_sizes,variants\n{classifier_saved_model},mnv2,1,original\n"
    )
    out = tmp_path / "o"
    result = CliRunner().invoke(bench, ["--assignment", str(csv_path), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output + repr(result.exception)
    manifest = VariantsManifest.load(out / "models" / "mnv2")
    assert [v.variant for v in manifest.variants] == ["original"] and manifest.variants[
        0
    ].status == "ok"
    [row] = _rows(out)
    assert (row["model"], row["variant"], row["status"]) == ("mnv2", "original", "ok")
    assert int(row["nodes"]) > 0 and float(row["size_mb"]) > 1  # conversion stats from the export
    stamp = (out / "models" / "mnv2" / "variants.json").stat().st_mtime_ns
    again = CliRunner().invoke(bench, ["--assignment", str(csv_path), "--out", str(out), *FAST])
    assert again.exit_code == 0, again.output
    assert (
        out / "models" / "mnv2" / "variants.json"
    ).stat().st_mtime_ns == stamp  # nothing re-exported


def test_bench_interrupt_keeps_finished_rows(bench_classifier_base: Path, tmp_path: Path) -> None:
    from tfsuite.loadtest.offline import BenchJob, BenchSettings, run_bench, targets_from_base_path

    settings = BenchSettings(
        out=tmp_path, batch_sizes=[1, 2], backends=["tf"], warmup=1, iterations=3
    )
    job = BenchJob(targets_from_base_path(bench_classifier_base, variants=["original"]), settings)

    def interrupt_after_first(result: object) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        run_bench([job], on_result=interrupt_after_first)
    [row] = _rows(tmp_path)
    assert row["status"] == "ok" and row["batch_size"] == "1"
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["interrupted"] is True and len(doc["cases"]) == 1
    assert "Interrupted" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "throughput.png").exists()


def test_bench_onnx_conversion_in_subprocess_and_its_timeout(tmp_path: Path) -> None:
    """--convert-timeout isolates tf2onnx in a child process; a timeout is a failed row."""
    base = _own_classifier_base(tmp_path / "tiny")
    args = ["--base-path", str(base), "--variants", "original", "--batch-sizes", "1"]
    args += ["--backends", "onnxruntime", *FAST]
    ok = CliRunner().invoke(
        bench, [*args, "--convert-timeout", "5m", "--no-onnx-spin", "--out", str(tmp_path / "a")]
    )
    assert ok.exit_code == 0, ok.output
    [row] = _rows(tmp_path / "a")
    assert row["status"] == "ok" and float(row["backend_max_abs_err"]) < 1e-5
    doc = json.loads((tmp_path / "a" / "bench.json").read_text())
    assert doc["cases"][0]["backend_details"]["onnx_converted_in"] == "subprocess"
    assert doc["cases"][0]["backend_details"]["allow_spinning"] is False
    timed_out = CliRunner().invoke(
        bench, [*args, "--convert-timeout", "1ms", "--out", str(tmp_path / "b")]
    )
    assert timed_out.exit_code == 0, timed_out.output
    [row] = _rows(tmp_path / "b")
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError: tf2onnx conversion timed out after 0.001s"
    assert not list((tmp_path / "b" / "onnx").glob("*.onnx"))  # nothing half-written
