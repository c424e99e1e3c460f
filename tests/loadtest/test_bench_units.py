"""Unit tests of the offline bench's pieces that need no model: stats, inputs, CLI parsing,
assignment files, the timed loop, traces and utilisation sampling."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tfsuite.errors import UsageError
from tfsuite.loadtest.offline.assignment import parse_assignment
from tfsuite.loadtest.offline.backends import BACKENDS, check_backends
from tfsuite.loadtest.offline.cli import parse_duration
from tfsuite.loadtest.offline.errors import BenchUsageError
from tfsuite.loadtest.offline.inputs import (
    InputSpec,
    parse_batch_sizes,
    parse_input_shapes,
    resolve_shape,
    synthetic_inputs,
)
from tfsuite.loadtest.offline.measure import measure, measure_overhead
from tfsuite.loadtest.offline.stats import format_seed000, summarise
from tfsuite.loadtest.offline.trace import case_trace, write_trace
from tfsuite.loadtest.offline.utilisation import UtilisationSampler


def test_bench_stats_match_seed000_definitions() -> None:
    lat_ns = [4_000_000, 5_000_000, 6_000_000, 5_000_000] * 25  # 100 iterations
    s = summarise(lat_ns, batch_size=8)
    assert s.iterations == 100
    assert s.total_time_s == pytest.approx(0.5)
    assert s.images_per_sec == pytest.approx(8 * 100 / 0.5)
    assert s.mean_ms == pytest.approx(5.0)
    assert s.p50_ms == pytest.approx(5.0)
    assert s.min_ms == pytest.approx(4.0)
    assert s.p99_ms == pytest.approx(6.0)
    assert s.p90_ms == pytest.approx(np.percentile(np.array(lat_ns) / 1e6, 90))
    # One huge outlier moves the mean but not the 5%-trimmed mean.
    s2 = summarise([1_000_000] * 99 + [1_000_000_000], batch_size=1)
    assert s2.mean_ms > 10
    assert s2.trimmed_mean_ms == pytest.approx(1.0)


def test_bench_seed000_format_lines() -> None:
    s = summarise([4_740_000] * 50, batch_size=1)
    text = format_seed000("mobilenet_v2 original tf,batch=1", "mobilenet_v2", s)
    lines = text.splitlines()
    assert lines[0] == "==========mobilenet_v2 original tf,batch=1"
    assert lines[1:] == [
        "results of mobilenet_v2:",
        "    images/sec: 211",
        "    99th_percentile(ms): 4.74",
        "    total_time(s): 0.2",
        "    latency_mean(ms): 4.74",
        "    latency_median(ms): 4.74",
        "    latency_min(ms): 4.74",
    ]


def test_bench_step_lines_like_seed000() -> None:
    from tfsuite.loadtest.offline.stats import format_steps

    text = format_steps([4_000_000] * 10 + [5_000_000] * 10 + [1] * 5, batch_size=8, every=10)
    assert text.splitlines() == [
        "    step 10/25, iter_time(ms)=4.0000, images/sec=2000",
        "    step 20/25, iter_time(ms)=5.0000, images/sec=1600",
    ]


@pytest.mark.parametrize("text", ["0", "-1", "1,x", "2.5", "", "1,,0"])
def test_bench_batch_sizes_must_be_positive_integers(text: str) -> None:
    with pytest.raises(BenchUsageError, match="positive integer|no batch sizes"):
        parse_batch_sizes(text)


def test_bench_batch_sizes_parse_and_dedupe() -> None:
    assert parse_batch_sizes("1, 8,32,8") == [1, 8, 32]
    assert issubclass(BenchUsageError, UsageError)


def test_bench_input_shapes_and_defaults() -> None:
    assert parse_input_shapes(["image_tensor:1x300x300x3"]) == {"image_tensor": (1, 300, 300, 3)}
    with pytest.raises(BenchUsageError, match="NAME:Dx"):
        parse_input_shapes(["image_tensor=1x3"])
    detector = InputSpec("image_tensor", "uint8", (None, None, None, 3))
    assert resolve_shape(detector, 8, {}) == (8, 300, 300, 3)
    assert resolve_shape(detector, 2, {"image_tensor": (1, 64, 96, 3)}) == (2, 64, 96, 3)
    dynamic = InputSpec("features", "float32", (None, None, 16))
    with pytest.raises(
        BenchUsageError,
        match=r"input 'features' .*dims 1 are dynamic.*--input-shape features:1xNx16",
    ):
        resolve_shape(dynamic, 4, {})
    with pytest.raises(BenchUsageError, match="has 2 dims but the signature has 3"):
        resolve_shape(dynamic, 4, {"features": (1, 5)})


def test_bench_synthetic_inputs_are_deterministic_and_typed() -> None:
    specs = [
        InputSpec("image", "uint8", (None, None, None, 3)),
        InputSpec("x", "float32", (None, 4)),
    ]
    a = synthetic_inputs(specs, 2, seed=7)
    b = synthetic_inputs(specs, 2, seed=7)
    c = synthetic_inputs(specs, 2, seed=8)
    assert a["image"].shape == (2, 300, 300, 3) and a["image"].dtype == np.uint8
    assert a["x"].shape == (2, 4) and a["x"].dtype == np.float32
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"], c["x"])


def test_bench_duration_parsing() -> None:
    assert parse_duration("10s") == 10.0
    assert parse_duration("500ms") == pytest.approx(0.5)
    assert parse_duration("2m") == 120.0
    with pytest.raises(BenchUsageError, match="positive duration"):
        parse_duration("soon")


def test_bench_unknown_or_missing_backend_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        BenchUsageError, match="unknown backend 'tensorrt'; choose from tf, onnxruntime, tf-trt"
    ):
        check_backends(["tensorrt"])
    # Simulate an environment without onnxruntime: find_spec reports it absent.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a)
    )
    with pytest.raises(
        BenchUsageError, match=r"backend 'onnxruntime' is not installed: pip install onnxruntime$"
    ):
        check_backends(["tf", "onnxruntime"])
    assert set(BACKENDS) == {"tf", "onnxruntime", "tf-trt"}


def test_bench_measure_counts_and_excludes_warmup() -> None:
    calls = []
    m = measure(lambda: calls.append(1), warmup=7, iterations=13, duration_s=None)
    assert len(calls) == 20
    assert len(m.latencies_ns) == len(m.starts_ns) == 13
    assert m.warmup_end_ns <= m.starts_ns[0]
    assert all(
        later >= earlier for earlier, later in zip(m.starts_ns, m.starts_ns[1:], strict=False)
    )
    before = time.perf_counter_ns()
    timed = measure(lambda: None, warmup=0, iterations=None, duration_s=0.02)
    # The last timed call ends at or after the deadline, which is 20 ms after the call began.
    assert timed.starts_ns[-1] + timed.latencies_ns[-1] - before >= 0.02e9


def test_bench_measurement_overhead_is_sub_microsecond() -> None:
    # The loop's own cost per iteration; the benchmark script relates it to real latencies.
    assert 0 < measure_overhead(iterations=2000, repeats=3) < 20_000


def test_bench_trace_is_chrome_trace_json(tmp_path: Path) -> None:
    m = measure(lambda: None, warmup=2, iterations=5, duration_s=None)
    trace = case_trace(
        "m_original_v1_tf_b1",
        case_start_ns=m.warmup_start_ns - 10,
        case_end_ns=m.starts_ns[-1] + 10**6,
        warmup_start_ns=m.warmup_start_ns,
        warmup_end_ns=m.warmup_end_ns,
        starts_ns=m.starts_ns,
        latencies_ns=m.latencies_ns,
        batch_size=1,
    )
    path = write_trace(tmp_path / "t.json", trace)
    doc = json.loads(path.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in spans] == ["m_original_v1_tf_b1", "warmup"] + [
        f"iteration {i}" for i in range(5)
    ]
    for e in spans:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e)
        assert isinstance(e["ts"], float) and e["dur"] >= 0
    assert not list(tmp_path.glob("*.tmp"))


def test_bench_utilisation_sampler_sees_busy_cpu() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=spin)
    with UtilisationSampler(interval=0.02) as sampler:
        worker.start()
        # Wait on the sampler having taken samples, not on wall-clock time.
        while len(sampler.summary.raw) < 5:
            threading.Event().wait(0.005)
        stop.set()
        worker.join()
    s = sampler.summary
    assert s.samples >= 5
    assert s.cpu_process_pct is not None and s.cpu_process_pct > 10
    assert s.gpu_util_pct is None and s.gpu_mem_mb is None  # no NVML / GPU on this machine


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bench_assignment_parses_seed003_columns(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "resnet.pb").write_bytes(b"x")
    csv_path = _write(
        tmp_path / "assignment.csv", 'Tasks,batch_size,precision\nmodel/resnet.pb,"1,8",FP32\n'
    )
    [a] = parse_assignment(csv_path)
    assert (
        a.line == 2
        and a.name == "resnet"
        and a.batch_sizes == [1, 8]
        and a.variants == ["original"]
    )
    assert a.source == tmp_path / "model" / "resnet.pb"
    # Seed 003 writes bare model names in Tasks (models live in model/), and precisions
    # as a quoted list: FP16/INT8 name the TF-TRT variants.
    csv_path.write_text("Tasks,batch_size/precision\nresnet,1\n")
    with pytest.raises(BenchUsageError, match="unknown column 'batch_size/precision'"):
        parse_assignment(csv_path)
    csv_path.write_text('Tasks,batch_size,precision\nresnet,"1,8,32","FP32,FP16,INT8"\n')
    [b] = parse_assignment(csv_path)
    assert b.source == tmp_path / "model" / "resnet.pb" and b.batch_sizes == [1, 8, 32]
    assert b.variants == ["original", "trt_fp16", "trt_int8"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model,batch_sizes,colour\n",
            r"assignment.csv:1: unknown column 'colour'; known columns: model, batch_sizes",
        ),
        (
            'model,batch_sizes\nmissing.pb,"1,8"\n',
            r"assignment.csv:2: model 'missing.pb' not found",
        ),
        (
            'model,batch_sizes\nm.pb,"1,0"\n',
            r"assignment.csv:2: batch size '0' is not a positive integer",
        ),
        ("model,batch_sizes\nm.pb,1\nm.pb,2\n", r"assignment.csv:3: model name 'm' is used twice"),
        ("batch_sizes\n1\n", r"assignment.csv:1: no 'model' column"),
        ("model\n", r"no models listed"),
        ("model,batch_sizes\nm.pb,1,2,3\n", r"assignment.csv:2: 4 fields but the header has 2"),
    ],
)
def test_bench_assignment_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.pb").write_bytes(b"x")
    with pytest.raises(BenchUsageError, match=message):
        parse_assignment(_write(tmp_path / "assignment.csv", text))


def test_bench_onnx_dequantize_rewrite_matches_tf() -> None:
    """quint8 Dequantize (MIN_FIRST, as quantize_weights writes it) -> Cast/Mul/Add, same values."""
    import tensorflow as tf

    from tfsuite.export.quantize import quantize_weights_rewrite
    from tfsuite.loadtest.offline.onnx import dequantize_for_onnx

    weights = np.random.default_rng(3).normal(0.3, 1.0, (64, 32)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 64], name="x")
        tf.identity(tf.matmul(x, tf.constant(weights, name="w")), name="y")
    quantized = quantize_weights_rewrite(graph.as_graph_def())
    assert sum(n.op == "Dequantize" for n in quantized.node) == 1
    rewritten, count = dequantize_for_onnx(quantized)
    assert count == 1
    assert not [
        n
        for n in rewritten.node
        if n.op == "Dequantize" or n.attr["dtype"].type == tf.quint8.as_datatype_enum
    ]
    feed = np.random.default_rng(4).random((3, 64), dtype=np.float32)

    def run(graph_def: tf.compat.v1.GraphDef) -> np.ndarray:
        with tf.Graph().as_default() as g:
            tf.import_graph_def(graph_def, name="")
            with tf.compat.v1.Session(graph=g) as sess:
                return sess.run("y:0", {"x:0": feed})

    np.testing.assert_allclose(run(rewritten), run(quantized), rtol=1e-5, atol=1e-5)
    # and the quantisation really happened (8-bit weights differ from the float ones)
    assert not np.allclose(run(quantized), run(graph.as_graph_def()), atol=1e-6)


@pytest.mark.parametrize(
    "module",
    [
        "offline.bench",
        "offline.backends",
        "offline.errors",
        "offline.inputs",
        "offline.measure",
        "offline.onnx",
        "offline.report",
        "offline.runner",
        "offline.stats",
        "offline.targets",
        "offline.trace",
        "offline.utilisation",
        "offline.assignment",
        "offline.cli",
        "offline",
    ],
)
def test_bench_modules_export_what_all_names(module: str) -> None:
    import importlib

    mod = importlib.import_module(f"tfsuite.loadtest.{module}")
    assert mod.__all__, module
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_bench_utilisation_gpu_fields_with_fake_nvml_no_gpu_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No GPU exists on this machine, so NVML is faked to check the GPU fields are summarised."""
    import sys
    import types

    fake = types.ModuleType("pynvml")
    readings = iter([30.0, 50.0, 70.0, 90.0] + [90.0] * 1000)
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: object()  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=next(readings))  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=512 * 2**20)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with UtilisationSampler(interval=0.01) as sampler:
        while len(sampler.summary.raw) < 2:
            threading.Event().wait(0.005)
    s = sampler.summary
    assert s.gpu_util_pct is not None and 30.0 <= s.gpu_util_pct <= 90.0
    assert s.gpu_mem_mb == pytest.approx(512.0)
