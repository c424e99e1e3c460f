"""``tfsuite demo``: the whole job, end to end, on the embedded server.

1. build the bundled example models (an SSD-style detector as a frozen graph, a
   MobileNetV2 classifier as a SavedModel);
2. export each into its variants under one model base path (``variants.json`` + tables);
3. write the TF Serving config files for both base paths (the files real TF Serving reads);
4. start the embedded server on those files (gRPC + REST on free local ports, batching on);
5. send the same images to every version of each model by its label over gRPC and print
   the per-version comparison: size, latency, images/s, agreement with version 1;
6. optionally, the offline benchmark of the classifier's versions (``--bench``);

and ends with the export tables of both base paths (what ``variants.json`` records).

Everything lands in ``--workdir``; re-running reuses what is up to date.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule

from tfsuite.atomic import atomic_path

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
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Requests in flight in the load pass (batching needs several).",
)
@click.option(
    "--load-requests",
    type=click.IntRange(0, 100_000),
    default=128,
    show_default=True,
    help="Requests per version in the load pass (0: skip it).",
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
    concurrency: int,
    load_requests: int,
    bench: bool,
) -> None:
    """Run the whole job end to end on the embedded server with the bundled example models."""
    from tfsuite.clients.grpc_client import TFServingClient
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
    from tfsuite.loadtest.served import (
        ServedInputs,
        compare_versions,
        comparison_table,
        load_table,
        skipped_notes,
        write_results,
    )
    from tfsuite.server.app import ModelServer
    from tfsuite.server.flags import EPHEMERAL_PORT
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.batching import BatchingOptions
    from tfsuite.serving_configs.bundle import (
        BATCHING_FILE,
        MODEL_CONFIG_FILE,
        MONITORING_FILE,
        ConfigBundle,
        ModelSource,
    )
    from tfsuite.serving_configs.monitoring import DEFAULT_METRICS_PATH

    console = Console()
    workdir = workdir.resolve()
    models_dir = workdir / "models"

    console.print(Rule("1/6  example models"))
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

    console.print(Rule("2/6  export variants"))
    manifests = {}
    for name, source in sources.items():
        console.print(f"[bold]{name}[/bold] from {source}")
        manifests[name] = export_variants(
            source, models_dir / name, variants=variants, model_name=name, console=console
        )

    console.print(Rule("3/6  TF Serving config files"))
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

    console.print(Rule("4/6  embedded server"))
    options = ServerOptions(
        port=EPHEMERAL_PORT,
        rest_api_port=EPHEMERAL_PORT,
        model_config_file=str(models_dir / MODEL_CONFIG_FILE),
        enable_batching=True,
        batching_parameters_file=str(models_dir / BATCHING_FILE),
        monitoring_config_file=str(models_dir / MONITORING_FILE),
    )  # with batching on, the server sizes its handler pool for full batches itself
    images = synthetic_images(workdir / "images", image_count)
    results = []
    with ModelServer(options) as server:
        console.print(f"  gRPC 127.0.0.1:{server.grpc_port}   REST 127.0.0.1:{server.rest_port}")
        console.print(
            Rule(
                f"5/6  every version by its label: {image_count} images one by one, "
                f"then {load_requests} requests {concurrency} in flight"
            )
        )
        metrics_url = f"http://127.0.0.1:{server.rest_port}{DEFAULT_METRICS_PATH}"
        with TFServingClient(f"127.0.0.1:{server.grpc_port}") as client:
            client.wait_ready()
            for name, manifest in manifests.items():
                # One size per model: batching merges requests only when shapes match
                # (TF Serving answers FAILED_PRECONDITION otherwise, unless padding is on).
                resize = (300, 300) if manifest.kind == "detector" else (224, 224)
                inputs = ServedInputs.from_images(client, name, images, resize=resize)
                results += compare_versions(
                    client,
                    name,
                    manifest,
                    inputs,
                    concurrency=concurrency,
                    load_requests=load_requests,
                    metrics_url=metrics_url,
                )
    for name in manifests:
        mine = [r for r in results if r.model == name]
        console.print(
            comparison_table(mine, f"{name}: served side by side (gRPC, one request at a time)")
        )
        if load_requests:
            console.print(
                load_table(mine, f"{name}: under load ({concurrency} in flight, batching on)")
            )
    for note in skipped_notes(results):
        console.print(note, markup=False, highlight=False)
    written = write_results(results, workdir / "results.json")
    console.print(f"results: {written}  report: {written.with_name('report.md')}")

    if bench:
        served = [r.variant for r in manifests[CLASSIFIER_NAME].loadable()]
        _offline_bench(workdir, models_dir / CLASSIFIER_NAME, served, console)

    # The export tables again, last: what is in each base path, as variants.json records it.
    console.print(Rule("summary: the model base paths"))
    for name in manifests:
        console.print(variants_table(VariantsManifest.load(models_dir / name)))
    console.print(f"models and TF Serving configs: {models_dir}")
    console.print(f"served comparison: {written}, {written.with_name('report.md')}")
    if bench:
        console.print(f"offline benchmark: {workdir / 'bench' / 'table.md'}")


def _offline_bench(workdir: Path, base_path: Path, variants: list[str], console: Console) -> None:
    from tfsuite.loadtest.offline.cli import bench

    console.print(
        Rule("6/6  offline benchmark of the classifier's versions (in-process, tf backend)")
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
