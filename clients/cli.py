"""``tfsuite detect`` and ``tfsuite classify``: images in, detections / top-k out.

Both commands share the connection options, the image inputs and the run loop
(:mod:`tfsuite.clients.pipeline`); they differ in what they check in the signature and
what they do with each answered batch.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np
from rich.console import Console

from tfsuite.clients.coco import Detection, detections_from_outputs, image_id_for, write_json_atomic
from tfsuite.clients.grpc_client import ChannelOptions, TFServingClient
from tfsuite.clients.images import LoadedImage, collect_images, draw_boxes, parse_resize
from tfsuite.clients.labels import LabelMap, coco_label_map, index_label_map, load_label_map
from tfsuite.clients.pipeline import (
    InputPlan,
    Preprocess,
    RunSummary,
    plan_input,
    print_summary,
    run_images,
    signature_of,
)
from tfsuite.clients.rest_client import RestClient
from tfsuite.clients.specs import ModelMetadata, SignatureSpec
from tfsuite.errors import UsageError

__all__ = ["detect", "classify", "DETECTION_OUTPUTS"]

log = logging.getLogger(__name__)

#: The Object Detection API's output aliases ``detect`` needs (num_detections is optional).
DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes")


@dataclass
class Connection:
    """The client and the model spec of one CLI run."""

    client: Any
    model: str
    version: int | None
    label: str | None
    signature: str | None
    meta: ModelMetadata = field(init=False)

    def predict_fn(self, output_filter: list[str] | None) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return self.client.predict(
                inputs, self.model, version=self.version, label=self.label,
                signature=self.signature, output_filter=output_filter,
            )

        return predict


def _connect(
    server: str, model: str, version: int | None, label: str | None, signature: str | None,
    rest: bool, timeout: float, max_message_mb: int,
) -> Connection:
    if version is not None and label:
        raise UsageError("give --version or --label, not both")
    if ":" not in server:
        raise UsageError(f"--server takes HOST:PORT, not {server!r}")
    if rest:
        client: Any = RestClient(server, model=model, timeout=timeout)
    else:
        client = TFServingClient(
            server, model=model, timeout=timeout,
            options=ChannelOptions(max_message_bytes=max_message_mb * 1024 * 1024),
        )
    conn = Connection(client, model, version, label, signature)
    # The metadata call doubles as the reachability and model/version/label check: its
    # errors are TF Serving's own ("Servable not found ...", "Unrecognized ... label").
    conn.meta = client.metadata(model, version=version, label=label)
    return conn


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("images", nargs=-1, required=True),
        click.option("--server", default="127.0.0.1:8500", show_default=True, help="TF Serving HOST:PORT (the REST port with --rest)."),
        click.option("--model", "model", required=True, help="Model name on the server."),
        click.option("--version", "version", type=int, default=None, help="Model version (default: latest)."),
        click.option("--label", "label", default=None, help="Version label (e.g. weight_quant); not with --version."),
        click.option("--signature", default=None, help="Signature name (default serving_default)."),
        click.option("--input", "input_name", default=None, help="Image input alias if the signature has several inputs."),
        click.option("--batch-size", type=int, default=1, show_default=True, help="Images per request."),
        click.option("--label-map", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Label map file (.pbtxt, .json or one name per line)."),
        click.option("--rest", is_flag=True, help="Use the REST API instead of gRPC."),
        click.option("--timeout", type=float, default=60.0, show_default=True, help="Per-request deadline in seconds."),
        click.option("--max-message-mb", type=int, default=512, show_default=True, help="gRPC send/receive message limit."),
        click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, for 50+ images)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _check_detection_signature(sig: SignatureSpec, model: str) -> list[str]:
    missing = [o for o in DETECTION_OUTPUTS if o not in sig.outputs]
    if missing:
        have = ", ".join(f"{a} ({s.dtype} {list(s.shape) if s.shape is not None else '?'})" for a, s in sig.outputs.items())
        raise UsageError(
            f"signature {sig.name!r} of {model} has no detection outputs "
            f"(needs {', '.join(DETECTION_OUTPUTS)}); its outputs are: {have or 'none'}"
        )
    return [*DETECTION_OUTPUTS, *(["num_detections"] if "num_detections" in sig.outputs else [])]


def _unique_image_ids(paths: list[Path]) -> list[int]:
    ids = [image_id_for(p, i) for i, p in enumerate(paths)]
    return ids if len(set(ids)) == len(ids) else list(range(len(paths)))


def _write_image_atomic(path: Path, bgr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".jpg", dir=path.parent)
    os.close(fd)
    try:
        if not cv2.imwrite(tmp, bgr):
            raise UsageError(f"cannot write {path} (OpenCV has no writer for {path.suffix!r})")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _output_names(paths: list[Path]) -> list[str]:
    """Per-image output file stems: the image's stem, made unique if two share one."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0)
        seen[p.stem] = n + 1
        names.append(p.stem if n == 0 else f"{p.stem}_{n}")
    return names


@click.command()
@_common
@click.option("--resize", default="keep", show_default=True, help="WxH to resize to before sending, or 'keep'. Boxes are always in original pixels.")
@click.option("--min-score", type=float, default=0.5, show_default=True, help="Drop detections below this score.")
@click.option("--draw", "draw_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write annotated images here.")
@click.option("--coco-json", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write all detections as one COCO results JSON.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write one COCO JSON per image here.")
def detect(
    images: tuple[str, ...], server: str, model: str, version: int | None, label: str | None,
    signature: str | None, input_name: str | None, batch_size: int, label_map: Path | None,
    rest: bool, timeout: float, max_message_mb: int, progress: bool | None, resize: str,
    min_score: float, draw_dir: Path | None, coco_json: Path | None, out_dir: Path | None,
) -> None:
    """Detect objects in IMAGES (files, directories, globs or .lst list files)."""
    size = parse_resize(resize)
    paths = collect_images(images)
    labels = load_label_map(label_map, first_id=1) if label_map else coco_label_map()
    conn = _connect(server, model, version, label, signature, rest, timeout, max_message_mb)
    sig = signature_of(conn.meta, signature)
    outputs = _check_detection_signature(sig, model)
    plan = plan_input(sig, model, input_name, "raw")
    image_ids = _unique_image_ids(paths)
    out_names = _output_names(paths)
    results: list[tuple[int, list[Detection]]] = []

    def on_batch(batch: list[LoadedImage], out: dict[str, np.ndarray]) -> None:
        num = out.get("num_detections")
        for row, item in enumerate(batch):
            w, h = item.original_size
            dets = detections_from_outputs(
                out["detection_boxes"][row], out["detection_scores"][row], out["detection_classes"][row],
                None if num is None else float(num[row]), w, h, labels, min_score,
            )
            results.append((image_ids[item.index], dets))
            click.echo(f"{item.path} ({w}x{h}): {len(dets)} detection{'s' if len(dets) != 1 else ''}")
            for d in dets:
                click.echo(f"  {d.describe()}")
            if out_dir is not None:
                write_json_atomic(out_dir / f"{out_names[item.index]}.json", [d.coco(image_ids[item.index]) for d in dets])
            if draw_dir is not None and item.original is not None:
                boxes = [(d.box, f"{d.label} {d.score:.2f}", d.class_id) for d in dets]
                _write_image_atomic(draw_dir / f"{out_names[item.index]}{_draw_suffix(item.path)}", draw_boxes(item.original, boxes))

    try:
        summary = _run(conn, paths, plan, on_batch, outputs, batch_size, size, draw_dir is not None, progress)
    finally:
        # Also after a failed request: the images answered so far are kept.
        if coco_json is not None:
            write_json_atomic(coco_json, [d.coco(i) for i, dets in results for d in dets])
            log.info("wrote %d detections of %d images to %s", sum(len(d) for _, d in results), len(results), coco_json)
    _finish(summary, f"detect: {model} ({_which(conn)})")


def _draw_suffix(path: Path) -> str:
    return path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".png"


def _which(conn: Connection) -> str:
    proto = "REST" if isinstance(conn.client, RestClient) else "gRPC"
    if conn.version is not None:
        return f"version {conn.version}, {proto}"
    if conn.label:
        return f"label {conn.label}, {proto}"
    return f"latest{f' = version {conn.meta.version}' if conn.meta.version else ''}, {proto}"


def _run(
    conn: Connection, paths: list[Path], plan: InputPlan, on_batch: Callable[..., None],
    outputs: list[str] | None, batch_size: int, size: Any, keep_original: bool, progress: bool | None,
) -> RunSummary:
    try:
        return run_images(
            conn.predict_fn(outputs), paths, plan, on_batch,
            batch_size=batch_size, resize=size, keep_original=keep_original, progress=progress,
        )
    finally:
        conn.client.close()


def _finish(summary: RunSummary, title: str) -> None:
    print_summary(summary, Console(stderr=True), title)
    if summary.interrupted:
        raise KeyboardInterrupt  # after the outputs are written: tfsuite.cli exits 130


def _classify_output(sig: SignatureSpec, model: str, wanted: str | None) -> str:
    if wanted:
        if wanted not in sig.outputs:
            raise UsageError(f"signature {sig.name!r} of {model} has no output {wanted!r}; outputs: {', '.join(sig.outputs)}")
        return wanted
    for name in ("probabilities", "scores", "predictions", "logits"):
        if name in sig.outputs:
            return name
    scores = [a for a, s in sig.outputs.items() if s.dtype.startswith("float") and s.shape is not None and len(s.shape) == 2]
    if len(scores) == 1:
        return scores[0]
    have = ", ".join(f"{a} ({s.dtype} {list(s.shape) if s.shape is not None else '?'})" for a, s in sig.outputs.items())
    raise UsageError(f"cannot tell which output of {model} holds class scores; choose one with --output (outputs: {have})")


def _auto_resize(sig_shape: tuple[int | None, ...] | None) -> tuple[int, int] | None:
    if sig_shape is not None and len(sig_shape) == 4 and sig_shape[1] and sig_shape[2]:
        return int(sig_shape[2]), int(sig_shape[1])
    return None


@click.command()
@_common
@click.option("--resize", default="auto", show_default=True, help="WxH, 'keep', or 'auto' (the signature's input size).")
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to print per image.")
@click.option("--output", "output_name", default=None, help="Output alias holding class scores (default: probabilities, or the only 2-D float output).")
@click.option("--preprocess", type=click.Choice(["mobilenet", "unit", "raw"]), default="mobilenet", show_default=True, help="Float inputs: [-1,1], [0,1] or 0..255 pixels.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write top-k per image as JSON.")
def classify(
    images: tuple[str, ...], server: str, model: str, version: int | None, label: str | None,
    signature: str | None, input_name: str | None, batch_size: int, label_map: Path | None,
    rest: bool, timeout: float, max_message_mb: int, progress: bool | None, resize: str,
    top_k: int, output_name: str | None, preprocess: Preprocess, json_out: Path | None,
) -> None:
    """Classify IMAGES (files, directories, globs or .lst list files); print the top-k classes."""
    if top_k < 1:
        raise UsageError("--top-k must be at least 1")
    auto = resize.strip().lower() == "auto"
    size = None if auto else parse_resize(resize)
    paths = collect_images(images)
    labels: LabelMap = load_label_map(label_map, first_id=0) if label_map else index_label_map()
    conn = _connect(server, model, version, label, signature, rest, timeout, max_message_mb)
    sig = signature_of(conn.meta, signature)
    output = _classify_output(sig, model, output_name)
    plan = plan_input(sig, model, input_name, preprocess)
    if auto:
        size = _auto_resize(sig.inputs[plan.alias].shape)
    results: list[dict[str, Any]] = []

    def on_batch(batch: list[LoadedImage], out: dict[str, np.ndarray]) -> None:
        scores = np.asarray(out[output]).reshape(len(batch), -1)
        k = min(top_k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, item in enumerate(batch):
            picks = [(int(c), labels[int(c)], float(scores[row, c])) for c in top[row]]
            click.echo(f"{item.path}:")
            for rank, (_, name, score) in enumerate(picks, start=1):
                click.echo(f"  {rank}. {name} {score:.4f}")
            results.append({"image": str(item.path), "top_k": [{"class_id": c, "label": n, "score": s} for c, n, s in picks]})

    try:
        summary = _run(conn, paths, plan, on_batch, [output], batch_size, size, False, progress)
    finally:
        if json_out is not None:
            write_json_atomic(json_out, results)
    _finish(summary, f"classify: {model} ({_which(conn)})")
