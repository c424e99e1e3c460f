"""``tfsuite detect`` and ``tfsuite classify``: images in, detections / top-k out.

Both commands share the connection options, the image inputs and the run loop
(:mod:`tfsuite.clients.pipeline`); they differ in what they check in the signature and
what they do with each answered batch (:mod:`tfsuite.clients.outputs`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console

from tfsuite.clients.fanout import print_fanout_summary, run_sharded
from tfsuite.clients.grpc_client import ChannelOptions, TFServingClient
from tfsuite.clients.images import Resize, collect_images, parse_resize
from tfsuite.clients.labels import LabelMap, coco_label_map, index_label_map, load_label_map
from tfsuite.clients.outputs import DetectionWriter, TopKWriter
from tfsuite.clients.pipeline import (
    InputPlan,
    Preprocess,
    plan_input,
    print_summary,
    run_images,
    signature_of,
)
from tfsuite.clients.rest_client import RestClient
from tfsuite.clients.specs import ModelMetadata, SignatureSpec
from tfsuite.clients.utilisation_log import UtilisationLog
from tfsuite.deploy.endpoints import EndpointsFile
from tfsuite.errors import TFSuiteError, UsageError

__all__ = ["DETECTION_OUTPUTS", "classify", "detect"]

log = logging.getLogger(__name__)

#: The Object Detection API's output aliases ``detect`` needs (num_detections is optional).
DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes")

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Connection:
    """The client and the model spec of one CLI run."""

    client: Any
    model: str
    version: int | None
    label: str | None
    signature: str | None
    address: str = ""
    meta: ModelMetadata = field(init=False)

    def predict_fn(self, output_filter: list[str] | None) -> Predict:
        def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return self.client.predict(
                inputs,
                self.model,
                version=self.version,
                label=self.label,
                signature=self.signature,
                output_filter=output_filter,
            )

        return predict

    def describe(self) -> str:
        proto = "REST" if isinstance(self.client, RestClient) else "gRPC"
        if self.version is not None:
            return f"version {self.version}, {proto}"
        if self.label:
            return f"label {self.label}, {proto}"
        latest = f" = version {self.meta.version}" if self.meta.version else ""
        return f"latest{latest}, {proto}"


@contextmanager
def _close_on_error(*clients: Any) -> Iterator[None]:
    """Close the clients if the block fails (Ctrl-C too); on success the caller keeps them."""
    try:
        yield
    except BaseException:
        for client in clients:
            client.close()
        raise


def server_addresses(opts: dict[str, Any]) -> list[str]:
    """``--server A,B,...`` or ``--endpoints FILE`` (``tfsuite up``'s endpoints.json)."""
    rest = opts["rest"]
    if opts.get("endpoints") is not None:
        if opts["server"]:
            raise UsageError("give --server or --endpoints, not both")
        addresses = EndpointsFile.read(opts["endpoints"]).addresses("rest" if rest else "grpc")
        if not addresses:
            raise UsageError(f"{opts['endpoints']} lists no endpoints; re-run `tfsuite up`")
        return addresses
    given = opts["server"] or ("127.0.0.1:8501" if rest else "127.0.0.1:8500")
    addresses = [a.strip() for a in given.split(",") if a.strip()]
    for address in addresses:
        if ":" not in address:
            raise UsageError(
                f"--server takes HOST:PORT (comma-separated for several), not {address!r}"
            )
    if len(set(addresses)) != len(addresses):
        raise UsageError(f"--server lists a server twice: {given}")
    return addresses


def _connect_one(opts: dict[str, Any], server: str) -> Connection:
    model = opts["model"]
    version, label = opts["version"], opts["label"]
    if opts["rest"]:
        client: Any = RestClient(server, model=model, timeout=opts["timeout"])
    else:
        limit = opts["max_message_mb"] * 1024 * 1024
        client = TFServingClient(
            server,
            model=model,
            timeout=opts["timeout"],
            options=ChannelOptions(max_message_bytes=limit),
        )
    conn = Connection(client, model, version, label, opts["signature"], server)
    # The metadata call doubles as the reachability and model/version/label check: its
    # errors are TF Serving's own ("Servable not found ...", "Unrecognized ... label").
    with _close_on_error(client):
        conn.meta = client.metadata(model, version=version, label=label)
    return conn


def _connect(opts: dict[str, Any]) -> list[Connection]:
    """One connection per server, each checked (model, version/label) before any image."""
    if opts["version"] is not None and opts["label"]:
        raise UsageError("give --version or --label, not both")
    conns: list[Connection] = []
    try:
        for server in server_addresses(opts):
            conns.append(_connect_one(opts, server))
    except BaseException:
        for conn in conns:
            conn.client.close()
        raise
    return conns


_COMMON_OPTIONS = [
    click.argument("images", nargs=-1, required=True),
    click.option(
        "--server",
        default=None,
        help="TF Serving HOST:PORT (the REST port with --rest); several, comma-separated, "
        "shard the images over them. [default: 127.0.0.1:8500, with --rest 127.0.0.1:8501]",
    ),
    click.option(
        "--endpoints",
        type=click.Path(path_type=Path),
        default=None,
        help="Shard over the servers of an endpoints.json (written by `tfsuite up`).",
    ),
    click.option(
        "--log-utilisation",
        "utilisation_csv",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Sample GPU (NVML) or CPU utilisation every second; write the samples to this CSV.",
    ),
    click.option("--model", "model", required=True, help="Model name on the server."),
    click.option("--version", type=int, default=None, help="Model version (default: latest)."),
    click.option("--label", default=None, help="Version label, e.g. weight_quant."),
    click.option("--signature", default=None, help="Signature name (default serving_default)."),
    click.option("--input", "input_name", default=None, help="Image input alias, if several."),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Images per request.",
    ),
    click.option(
        "--label-map",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Label map file (.pbtxt, .json, or one name per line).",
    ),
    click.option("--rest", is_flag=True, help="Use the REST API instead of gRPC."),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=60.0,
        show_default=True,
        help="Deadline per request, in seconds.",
    ),
    click.option(
        "--max-message-mb",
        type=click.IntRange(min=1),
        default=512,
        show_default=True,
        help="gRPC send/receive message limit, in MiB.",
    ),
    click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar (default: on a terminal, for 50+ images).",
    ),
]


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_COMMON_OPTIONS):
        func = option(func)
    return func


def _outputs_text(sig: SignatureSpec) -> str:
    def shape(s: Any) -> str:
        return str(list(s.shape)) if s.shape is not None else "?"

    return ", ".join(f"{a} ({s.dtype} {shape(s)})" for a, s in sig.outputs.items()) or "none"


def _detection_outputs(sig: SignatureSpec, model: str) -> list[str] | None:
    if any(o not in sig.outputs for o in DETECTION_OUTPUTS):
        raise UsageError(
            f"signature {sig.name!r} of {model} has no detection outputs "
            f"(needs {', '.join(DETECTION_OUTPUTS)}); its outputs are: {_outputs_text(sig)}"
        )
    extra = ["num_detections"] if "num_detections" in sig.outputs else []
    wanted = [*DETECTION_OUTPUTS, *extra]
    # Filter only when there is something to leave out (the usual SSD signature has exactly these).
    return None if set(wanted) == set(sig.outputs) else wanted


def _scores_output(sig: SignatureSpec, model: str, wanted: str | None) -> str:
    if wanted:
        if wanted not in sig.outputs:
            raise UsageError(
                f"signature {sig.name!r} of {model} has no output {wanted!r}; "
                f"its outputs are: {_outputs_text(sig)}"
            )
        return wanted
    for name in ("probabilities", "scores", "predictions", "logits"):
        if name in sig.outputs:
            return name
    candidates = [
        a
        for a, s in sig.outputs.items()
        if s.dtype.startswith("float") and s.shape is not None and len(s.shape) == 2
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise UsageError(
        f"cannot tell which output of {model} holds class scores; choose one with --output "
        f"(outputs: {_outputs_text(sig)})"
    )


def _prepare(
    opts: dict[str, Any], first_id: int, default_labels: Callable[[], LabelMap]
) -> tuple[list[Path], LabelMap, list[Connection], SignatureSpec]:
    """Images, labels, connections and signature: the local checks first, then the servers."""
    paths = collect_images(opts["images"])
    label_map = opts["label_map"]
    labels = load_label_map(label_map, first_id=first_id) if label_map else default_labels()
    conns = _connect(opts)
    with _close_on_error(*(c.client for c in conns)):
        sigs = [signature_of(c.meta, opts["signature"]) for c in conns]
        for conn, sig in zip(conns[1:], sigs[1:]):
            if sig != sigs[0]:
                raise UsageError(
                    f"{conn.address} serves a different signature {sig.name!r} of {conn.model} "
                    f"than {conns[0].address}; shard only over servers of the same model"
                )
        return paths, labels, conns, sigs[0]


def _run(
    conns: list[Connection],
    paths: list[Path],
    plan: InputPlan,
    on_batch: Callable[..., None],
    output_filter: list[str] | None,
    opts: dict[str, Any],
    resize: Resize,
    *,
    keep_original: bool,
    save: Callable[[], None] | None,
    title: str,
) -> None:
    """Send every image (one server, or sharded over several), then ``save`` (also after a
    failed request or Ctrl-C: the images answered so far are kept), then the summary."""
    run: dict[str, Any] = {
        "batch_size": opts["batch_size"],
        "resize": resize,
        "keep_original": keep_original,
        "progress": opts["progress"],
    }
    first = conns[0]
    summary: Any
    try:
        # Sample only when the figures are used: a CSV was asked for, or the fan-out table.
        sampled = opts["utilisation_csv"] is not None or len(conns) > 1
        log = UtilisationLog(opts["utilisation_csv"]) if sampled else nullcontext()
        with log as utilisation:
            if len(conns) == 1:
                summary = run_images(
                    first.predict_fn(output_filter),
                    paths,
                    plan,
                    on_batch,
                    call_hooks=first.client.call_hooks,
                    **run,
                )
            else:
                servers = [(c.address, c.predict_fn(output_filter)) for c in conns]
                summary = run_sharded(servers, paths, plan, on_batch, **run)  # type: ignore[arg-type]
    finally:
        for conn in conns:
            conn.client.close()
        if save is not None:
            save()
    console = Console(stderr=True)
    if len(conns) == 1:
        print_summary(summary, console, f"{title}: {first.model} ({first.describe()})")
    else:
        summary.utilisation = utilisation.summary
        where = f"{first.model} ({first.describe()}) on {len(conns)} servers"
        print_fanout_summary(summary, console, f"{title}: {where}")
    if opts["utilisation_csv"] is not None:
        console.print(
            f"wrote {utilisation.summary.samples} utilisation sample(s) to {opts['utilisation_csv']}",
            markup=False,
            highlight=False,
        )
    if summary.interrupted:
        raise KeyboardInterrupt  # after the outputs are written: tfsuite.cli exits 130
    if summary.total and not summary.images and not getattr(summary, "unanswered", 0):
        raise UsageError(f"none of the {summary.total} image(s) could be read; nothing was sent")
    if getattr(summary, "unanswered", 0):
        raise TFSuiteError(
            f"{summary.unanswered} image(s) were not answered: every server stopped answering "
            "(see the per-server table); the answered ones are written"
        )


@click.command()
@_common
@click.option(
    "--resize",
    default="keep",
    show_default=True,
    help="WxH to resize to before sending, or 'keep'. Boxes are always in original pixels.",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Drop detections scoring lower.",
)
@click.option(
    "--draw",
    "draw_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write annotated images to this directory.",
)
@click.option(
    "--coco-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write all detections to one COCO results JSON file.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one COCO results JSON per image to this directory.",
)
def detect(**opts: Any) -> None:
    """Detect objects in IMAGES (files, directories, globs or .lst list files).

    Prints each image's detections as `label at [x1,y1,x2,y2] score` in pixels of the
    original image, then a timing summary (requests, images/s, p50/p90/p99 latency) on
    stderr. Unreadable images are skipped, counted and listed at the end. Ctrl-C stops
    after the batch in flight and still writes the JSON of the images answered so far.
    """
    resize = parse_resize(opts["resize"])
    paths, labels, conns, sig = _prepare(opts, 1, coco_label_map)
    model = conns[0].model
    with _close_on_error(*(c.client for c in conns)):
        output_filter = _detection_outputs(sig, model)
        plan = plan_input(sig, model, opts["input_name"], "raw")
        writer = DetectionWriter(
            paths,
            labels,
            opts["min_score"],
            draw_dir=opts["draw_dir"],
            out_dir=opts["out_dir"],
            echo=click.echo,
        )
    coco_json = opts["coco_json"]
    save = None if coco_json is None else (lambda: writer.write_coco(coco_json))
    _run(
        conns,
        paths,
        plan,
        writer.on_batch,
        output_filter,
        opts,
        resize,
        keep_original=writer.draws,
        save=save,
        title="detect",
    )


def _auto_resize(shape: tuple[int | None, ...] | None) -> Resize:
    if shape is not None and len(shape) == 4 and shape[1] and shape[2]:
        return int(shape[2]), int(shape[1])
    return None


@click.command()
@_common
@click.option(
    "--resize",
    default="auto",
    show_default=True,
    help="WxH, 'keep', or 'auto' (the signature's input size).",
)
@click.option(
    "--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Classes per image."
)
@click.option(
    "--output",
    "output_name",
    default=None,
    help="Output holding class scores (default: probabilities, or the only 2-D float output).",
)
@click.option(
    "--preprocess",
    type=click.Choice(["mobilenet", "unit", "raw"]),
    default="mobilenet",
    show_default=True,
    help="Float inputs get pixels in [-1,1], [0,1] or 0..255.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the top-k of every image to this JSON file.",
)
def classify(**opts: Any) -> None:
    """Classify IMAGES (files, directories, globs or .lst list files); print the top-k.

    Prints `rank. label score` for the --top-k classes of each image, then a timing summary
    on stderr. Unreadable images are skipped, counted and listed at the end. Ctrl-C
    stops after the batch in flight and still writes --json for the images answered.
    """
    auto = opts["resize"].strip().lower() == "auto"
    resize = None if auto else parse_resize(opts["resize"])
    paths, labels, conns, sig = _prepare(opts, 0, index_label_map)
    model = conns[0].model
    with _close_on_error(*(c.client for c in conns)):
        output = _scores_output(sig, model, opts["output_name"])
        preprocess: Preprocess = opts["preprocess"]
        plan = plan_input(sig, model, opts["input_name"], preprocess)
    if auto:
        resize = _auto_resize(sig.inputs[plan.alias].shape)
    writer = TopKWriter(output, labels, opts["top_k"], echo=click.echo)
    json_out = opts["json_out"]
    save = None if json_out is None else (lambda: writer.write_json(json_out))
    _run(
        conns,
        paths,
        plan,
        writer.on_batch,
        [output],
        opts,
        resize,
        keep_original=False,
        save=save,
        title="classify",
    )
