"""Offline benchmark targets for ``tfsuite bench``, measured in one invocation, printed as a table.

Builds the bundled ``mobilenet_v2`` classifier, exports ``original`` + ``weight_quant`` into
``<out>/models/mobilenet_v2`` (skipped when already there), then runs ONE
``tfsuite bench --batch-sizes 1,8,32 --backends tf,onnxruntime`` over both variants and prints:

1. the batching curve: images/s at each batch size and batch 32 / batch 1;
2. onnxruntime vs tf: images/s ratio per variant and batch size;
3. the measurement overhead per iteration vs the fastest case's median latency (target < 1%).

Usage: ``.venv/bin/python benchmarks/offline_matrix.py [--out /tmp/tfsuite-bench] [--duration 5s]``
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click


@click.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("/tmp/tfsuite-bench"), show_default=True
)
@click.option("--warmup", default=10, show_default=True)
@click.option("--iterations", default=50, show_default=True)
@click.option("--duration", default=None, help="Per case, instead of --iterations (e.g. 5s).")
@click.option("--threads", type=int, default=None)
@click.option("--onnx-spin/--no-onnx-spin", default=True, help="Passed to tfsuite bench.")
def main(
    out: Path,
    warmup: int,
    iterations: int,
    duration: str | None,
    threads: int | None,
    onnx_spin: bool,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from tfsuite.cli import cli, run
    from tfsuite.export.api import export_variants
    from tfsuite.export.examples import build_classifier
    from tfsuite.export.manifest import VariantsManifest

    console = Console(width=140)
    base = out / "models" / "mobilenet_v2"
    if VariantsManifest.load_if_exists(base) is None:
        files = build_classifier(out / "src")
        export_variants(
            files.saved_model,
            base,
            variants="original,weight_quant",
            model_name="mobilenet_v2",
            progress=False,
        )
    args = [
        "bench",
        "--base-path",
        str(base),
        "--variants",
        "original,weight_quant",
        "--batch-sizes",
        "1,8,32",
        "--backends",
        "tf,onnxruntime",
        "--warmup",
        str(warmup),
        "--out",
        str(out / "bench"),
        "--no-progress",
    ]
    args += ["--duration", duration] if duration else ["--iterations", str(iterations)]
    args += ["--threads", str(threads)] if threads else []
    args += [] if onnx_spin else ["--no-onnx-spin"]
    run(cli, args, prog_name="tfsuite")

    with (out / "bench" / "table.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    ips = {
        (r["variant"], r["backend"], int(r["batch_size"])): float(r["images_per_sec"]) for r in rows
    }
    p50 = {(r["variant"], r["backend"], int(r["batch_size"])): float(r["p50_ms"]) for r in rows}

    curve = Table(
        title="batching curve (images/s = batch x iterations / total time; at p50 = batch / median)"
    )
    for col in (
        "variant",
        "backend",
        "batch",
        "images/s",
        "min ms",
        "p50 ms",
        "p99 ms",
        "img/s at p50",
        "img/s at min",
        "vs batch 1",
    ):
        curve.add_column(col, justify="right")
    mins = {(r["variant"], r["backend"], int(r["batch_size"])): float(r["min_ms"]) for r in rows}
    p99 = {(r["variant"], r["backend"], int(r["batch_size"])): float(r["p99_ms"]) for r in rows}
    for variant in ("original", "weight_quant"):
        for backend in ("tf", "onnxruntime"):
            for b in (1, 8, 32):
                key = (variant, backend, b)
                if key not in ips:
                    curve.add_row(variant, backend, str(b), *["-"] * 7)
                    continue
                first = ips.get((variant, backend, 1))
                curve.add_row(
                    variant,
                    backend,
                    str(b),
                    f"{ips[key]:.1f}",
                    f"{mins[key]:.1f}",
                    f"{p50[key]:.1f}",
                    f"{p99[key]:.1f}",
                    f"{b * 1000 / p50[key]:.1f}",
                    f"{b * 1000 / mins[key]:.1f}",
                    f"{ips[key] / first:.2f}x" if first else "-",
                )
    console.print(curve)

    vs = Table(title="onnxruntime / tf (images/s ratio; in brackets: ratio at min latency)")
    for col in ("variant", "batch 1", "batch 8", "batch 32"):
        vs.add_column(col, justify="right")
    for variant in ("original", "weight_quant"):
        cells = []
        for b in (1, 8, 32):
            tf_v, ort_v = ips.get((variant, "tf", b)), ips.get((variant, "onnxruntime", b))
            tf_m, ort_m = mins.get((variant, "tf", b)), mins.get((variant, "onnxruntime", b))
            cells.append(
                f"{ort_v / tf_v:.2f}x ({tf_m / ort_m:.2f}x)"
                if tf_v and ort_v and tf_m and ort_m
                else "-"
            )
        vs.add_row(variant, *cells)
    console.print(vs)

    doc = json.loads((out / "bench" / "bench.json").read_text())
    o = doc["measurement_overhead"]
    verdict = (
        "PASS"
        if o["percent_of_fastest_case"] is not None and o["percent_of_fastest_case"] < 1
        else "FAIL"
    )
    console.print(
        f"measurement overhead: {o['ns_per_iteration']:.0f} ns/iteration = {o['percent_of_fastest_case']:.4f}% "
        f"of the fastest case's median ({o['fastest_case_median_ms']:.3f} ms); target < 1%: {verdict}"
    )
    env = doc["environment"]
    console.print(
        f"TF {env['tensorflow']}, onnxruntime {env.get('onnxruntime')}, CPU {env['cpu']} x{env['cpu_count_logical']}"
    )


if __name__ == "__main__":
    main()
