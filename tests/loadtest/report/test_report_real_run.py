"""A report rendered from a REAL small run: ``run_compare`` (the online engine) against the
embedded server (its own process, batching on) serving two exported variants of a small
classifier with real variables; closed loop and one Poisson open-loop rate."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfsuite.loadtest.online import CompareOptions, StepSettings, run_compare
from tfsuite.loadtest.report import load_runs, write_report
from tfsuite.loadtest.report.formatting import fmt_ratio, fmt_share
from tfsuite.loadtest.results import load_results
from tfsuite.serving_configs.batching import BatchingOptions, write_batching_parameters

# Built and exported in a child process: this (load-generating) process never imports TF.
_BUILD = """
import sys
import numpy as np, tensorflow as tf
from tfsuite.export.api import export_variants
src, base = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)

class Tiny(tf.Module):
    def __init__(self):
        self.w1 = tf.Variable(rng.normal(0, 0.2, (64, 256)).astype("float32"))
        self.w2 = tf.Variable(rng.normal(0, 0.2, (256, 10)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="input")])
    def serve(self, x):
        hidden = tf.nn.relu(tf.matmul(x, self.w1))
        return {"probabilities": tf.nn.softmax(tf.matmul(hidden, self.w2))}

m = Tiny()
tf.saved_model.save(m, src, signatures={"serving_default": m.serve})
export_variants(src, base, variants="original,weight_quant", model_name="tiny")
"""


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    base = root / "models" / "tiny"
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_BUILD), str(root / "src"), str(base)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return base


@pytest.mark.slow
def test_report_from_a_real_run_on_the_embedded_server(tiny_base: Path, tmp_path: Path) -> None:
    batching = write_batching_parameters(
        tmp_path / "batching_parameters.txt",
        BatchingOptions(
            max_batch_size=8, batch_timeout_micros=2000, allowed_batch_sizes=(1, 2, 4, 8)
        ),
    )
    options = CompareOptions(
        model="tiny",
        out=tmp_path / "run",
        base_path=tiny_base,
        batching_parameters=batching,
        concurrency=[1, 4],
        rates=[40.0],
        poisson=True,
        settings=StepSettings(duration_s=1.5, max_duration_s=3.0, warmup_s=0.3, window_s=0.5),
        command="tfsuite compare (test)",
    )
    run_compare(options)
    results = load_results(tmp_path / "run" / "results.json")
    assert results.run.complete and len(results.steps) == 6  # 2 versions x (2 closed + 1 open)

    files = write_report(load_runs([tmp_path / "run" / "results.json"]), tmp_path / "report")
    html = files.html.read_text()
    texts = [line.text for line in files.recommendation]

    # The version line carries this run's own size ratio and agreement.
    sizes = {v.version: v.size_bytes for v in results.versions}
    agreement = next(v.agreement for v in results.versions if v.version == 2)
    assert agreement is not None and agreement.top1 is not None and sizes[1] and sizes[2]
    line = next(t for t in texts if t.startswith("v2 weight_quant: "))
    assert line.startswith(
        f"v2 weight_quant: {fmt_ratio(sizes[2] / sizes[1])} the size, same top-1 on "
        f"{fmt_share(agreement.top1)} of {agreement.inputs} inputs"
    )
    assert " at 4 clients (" in line  # p99 compared at the highest common load
    assert any(t.startswith(("Serve ", "No version of tiny")) for t in texts)  # one verdict

    # Everything the engine measured is drawn: batching was on, so the server's batches are.
    for kind in (
        "latency-vs-load", "throughput-vs-concurrency", "p99-vs-throughput", "batch-sizes",
        "queueing-vs-load", "size", "open-loop-correction",
    ):  # fmt: skip
        assert f'id="chart-tiny-{kind}" data-chart="{kind}">' in html, kind
    steps_md = files.markdown.read_text().split("### Every step")[1].split("###")[0]
    assert steps_md.count("\n| tiny | v") == len(results.steps)
