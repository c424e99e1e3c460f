"""``tfsuite demo``: the whole job, end to end, on the embedded server.

1. build the bundled example models (an SSD-style detector as a frozen graph, a
   MobileNetV2 classifier as a SavedModel);
2. export each into its variants under one model base path (``variants.json`` + tables);
3. write the TF Serving config files for both base paths (the files real TF Serving reads);
4. start the embedded server on those files, in its own process, batching on;
5. detect objects on the sample images (the ``tfsuite detect`` client);
6. a short ``tfsuite compare`` sweep of both models' versions: closed loop with the p99 SLO
   set, then one open-loop rate (see :mod:`tfsuite.demo_compare`);
7. the offline benchmark of the classifier's versions (``--bench``);
8. ``results.json`` (both models, one run) and the report, ``report.html`` + ``report.md``;

and ends by printing the recommendation and where the report is.

Everything lands in ``--workdir``; re-running reuses the models that are up to date.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule

from tfsuite.atomic import atomic_path
from tfsuite.errors import UsageError

__all__ = ["demo"]


def synthetic_images(out: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` deterministic JPEGs in two sizes, from the exporter's validation images."""
    import cv2

    from tfsuite.export.agreement import synthetic_images as pixels

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = out / f"{i:06d}.jpg"
        if not path.exists():
            height, width = (480, 640) if i % 2 == 0 else (375, 500)
            with atomic_path(path, suffix=".jpg") as tmp:
                cv2.imwrite(str(tmp), pixels(1, height, width, 3, seed=seed + i)[0])
        paths.append(path)
    return paths


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/demo"),
    show_default=True,
    help="Where models, configs, images and reports go.",
)
@click.option(
    "--images",
    "image_count",
    type=click.IntRange(1, 1000),
    default=24,
    show_default=True,
    help="Synthetic images sent to every version.",
)
@click.option(
    "--variants",
    default="original,weight_quant,trt_fp16,trt_int8",
    show_default=True,
    help="Variants to export (TF-TRT ones are recorded as skipped without TensorRT).",
)
@click.option(
    "--concurrency",
    default="1,4,16",
    show_default=True,
    help="Closed-loop concurrencies of the compare sweep (batching needs several in flight).",
)
@click.option(
    "--slo-p99-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="The p99 latency SLO the sweep searches under.",
)
@click.option(
    "--step-duration",
    default="2s",
    show_default=True,
    help="Measured time per compare step (short: this is a demo; use tfsuite compare for more).",
)
@click.option(
    "--bench/--no-bench",
    default=True,
    show_default=True,
    help="Also run the offline benchmark of the classifier's versions.",
)
def demo(
    workdir: Path,
    image_count: int,
    variants: str,
    concurrency: str,
    slo_p99_ms: float,
    step_duration: str,
    bench: bool,
) -> None:
    """Run the whole job end to end on the embedded server with the bundled example models."""
    from tfsuite.clients.cli import detect
    from tfsuite.demo_compare import SweepSettings, combine_runs, sweep_model
    from tfsuite.export.api import export_variants
    from tfsuite.export.examples import (
        CLASSIFIER_NAME,
        DETECTOR_NAME,
        classifier_files,
        detector_path,
        write_examples,
    )
    from tfsuite.export.manifest import VariantsManifest
    from tfsuite.export.report import variants_table
    from tfsuite.loadtest.online.embedded import EmbeddedServer
    from tfsuite.loadtest.report import load_runs, write_report
    from tfsuite.serving_configs.batching import BatchingOptions
    from tfsuite.serving_configs.bundle import ConfigBundle, ModelSource

    try:
        sweep = SweepSettings(
            concurrency=tuple(int(c) for c in concurrency.split(",") if c.strip()),
            slo_p99_ms=slo_p99_ms,
            duration=step_duration,
        )
    except ValueError:
        raise UsageError(
            f"--concurrency takes a comma list of integers, not {concurrency!r}"
        ) from None
    console = Console()
    workdir = workdir.resolve()
    models_dir = workdir / "models"

    console.print(Rule("1/8  example models"))
    examples_dir = workdir / "examples"
    sources = {
        DETECTOR_NAME: detector_path(examples_dir),
        CLASSIFIER_NAME: classifier_files(examples_dir).saved_model,
    }
    # Build only what is missing: a rebuild is byte-identical across processes, but not
    # within one (TensorFlow numbers traced functions per process), and an export of a
    # "different" source would be refused.
    missing = [
        kind
        for kind, name in (("detector", DETECTOR_NAME), ("classifier", CLASSIFIER_NAME))
        if not sources[name].exists()
    ]
    if missing:
        write_examples(examples_dir, only=missing)
    for name, path in sources.items():
        console.print(f"  {name:<22} {path}")

    console.print(Rule("2/8  export variants"))
    manifests = {}
    for name, source in sources.items():
        console.print(f"[bold]{name}[/bold] from {source}")
        manifests[name] = export_variants(
            source, models_dir / name, variants=variants, model_name=name, console=console
        )

    console.print(Rule("3/8  TF Serving config files"))
    bundle = ConfigBundle.build(
        [ModelSource(models_dir / name, name) for name in sources],
        out_dir=models_dir,
        batching=BatchingOptions(
            max_batch_size=32,
            batch_timeout_micros=2000,
            max_enqueued_batches=100,
            allowed_batch_sizes=(1, 2, 4, 8, 16, 32),
        ),
    )
    for kind, path in bundle.write(models_dir).items():
        console.print(f"  {kind:<13} {path}")

    console.print(Rule("4/8  embedded server (own process, batching on)"))
    images = synthetic_images(workdir / "images", image_count)
    parts = []
    with EmbeddedServer(models_dir, DETECTOR_NAME, config_dir=models_dir) as server:
        console.print(f"  gRPC {server.grpc_address}   REST {server.rest_address}")
        console.print(f"  metrics {server.metrics_url}")

        console.print(Rule(f"5/8  detect on {min(4, len(images))} sample images"))
        detect.main(
            [
                *(str(p) for p in images[:4]),
                f"--server={server.grpc_address}",
                f"--model={DETECTOR_NAME}",
                "--min-score=0.3",
                "--resize=300x300",
                f"--draw={workdir / 'detect'}",
                f"--coco-json={workdir / 'detect' / 'detections.json'}",
            ],
            standalone_mode=False,
        )

        console.print(
            Rule(
                f"6/8  compare sweep: closed loop c={concurrency} (p99 SLO {slo_p99_ms:g} ms), "
                "then one open-loop rate"
            )
        )
        for name in manifests:
            parts += sweep_model(server, name, workdir / "compare" / name, sweep, console)
        results = combine_runs(parts, server, _command_line(), manifests)
    written = results.write(workdir / "results.json")

    if bench:
        served = [r.variant for r in manifests[CLASSIFIER_NAME].loadable()]
        _offline_bench(workdir, models_dir / CLASSIFIER_NAME, served, console)

    console.print(Rule("8/8  report"))
    files = write_report(load_runs([written]), workdir)
    # The export tables again: what is in each base path, as variants.json records it.
    for name in manifests:
        console.print(variants_table(VariantsManifest.load(models_dir / name)))
    console.print(f"models and TF Serving configs: {models_dir}")
    if bench:
        console.print(f"offline benchmark: {workdir / 'bench' / 'table.md'}")
    console.print(f"results: {written}")
    console.print(Rule("recommendation"))
    for line in files.recommendation:
        prefix = "→ " if line.kind == "verdict" else "  "
        console.print(prefix + line.text, markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {files.html}", markup=False, highlight=False, soft_wrap=True)


def _command_line() -> str:
    import shlex
    import sys

    return shlex.join(["tfsuite", *sys.argv[1:]])


def _offline_bench(workdir: Path, base_path: Path, variants: list[str], console: Console) -> None:
    from tfsuite.loadtest.offline.cli import bench

    console.print(
        Rule("7/8  offline benchmark of the classifier's versions (in-process, tf backend)")
    )
    bench.main(
        [
            "--base-path",
            str(base_path),
            "--variants",
            ",".join(variants),
            "--batch-sizes",
            "1,8",
            "--warmup",
            "5",
            "--iterations",
            "20",
            "--backends",
            "tf",
            "--out",
            str(workdir / "bench"),
        ],
        standalone_mode=False,
    )
