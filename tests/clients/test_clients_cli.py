"""``tfsuite detect`` / ``tfsuite classify`` against the embedded server (CliRunner, in-process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tfsuite.clients.cli import classify, detect
from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.images import collect_images
from tfsuite.clients.pipeline import InputPlan, run_images
from tfsuite.errors import UsageError

pytestmark = pytest.mark.slow

LINE = re.compile(r"^  (.+) at \[(-?\d+),(-?\d+),(-?\d+),(-?\d+)\] (\d\.\d{3})$")


def _invoke(command, args):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(command, args, catch_exceptions=True)


def _readable(image_dir: Path) -> list[Path]:
    return [p for p in sorted(image_dir.iterdir()) if p.name != "000099.jpg"]


@pytest.mark.parametrize("spec", [["--version", "1"], ["--label", "weight_quant", "--rest"]])
def test_detect_writes_coco_json_annotated_images_and_per_image_json(serving, image_dir, tmp_path, spec) -> None:  # type: ignore[no-untyped-def]
    server = serving.rest if "--rest" in spec else serving.grpc
    coco = tmp_path / "dets.json"
    result = _invoke(detect, [
        "--server", server, "--model", serving.detector, *spec, "--batch-size", "2",
        "--min-score", "0.3", "--coco-json", str(coco), "--draw", str(tmp_path / "drawn"),
        "--out", str(tmp_path / "per_image"), str(image_dir),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    readable = _readable(image_dir)
    sizes = {int(p.stem): cv2.imread(str(p)).shape[:2] for p in readable}

    records = json.loads(coco.read_text())
    assert isinstance(records, list) and records, "the seeded detector finds boxes at score >= 0.3"
    for rec in records:
        assert set(rec) == {"image_id", "category_id", "bbox", "score"}
        h, w = sizes[rec["image_id"]]
        x, y, bw, bh = rec["bbox"]
        assert 0 <= x <= w and 0 <= y <= h and bw >= 0 and bh >= 0
        assert x + bw <= w + 0.01 and y + bh <= h + 0.01
        assert 1 <= rec["category_id"] <= 90 and 0.3 <= rec["score"] <= 1.0

    # Printed lines agree with the JSON (pixel coordinates of the original image).
    printed = [LINE.match(line) for line in result.stdout.splitlines()]
    boxes = [m for m in printed if m]
    assert len(boxes) == len(records)
    first = records[0]
    m = boxes[0]
    assert [int(m[2]), int(m[3])] == [round(first["bbox"][0]), round(first["bbox"][1])]

    drawn = sorted((tmp_path / "drawn").iterdir())
    assert [p.stem for p in drawn] == [p.stem for p in readable]
    for p in drawn:
        assert cv2.imread(str(p)).shape[:2] == sizes[int(p.stem)]
    per_image = sorted((tmp_path / "per_image").glob("*.json"))
    assert len(per_image) == len(readable)
    assert sum(len(json.loads(p.read_text())) for p in per_image) == len(records)

    # The unreadable file is skipped, counted and named; the timing summary is there.
    assert "skipped" in result.output and "000099.jpg" in result.output
    assert "images/s" in result.output and "p99" in result.output
    assert re.search(r"images\s+│?\s*6 of 7", result.output)


def test_detect_version_and_label_answer_differently(serving, image_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outs = {}
    for name, spec in {"v1": ["--version", "1"], "wq": ["--label", "weight_quant"]}.items():
        path = tmp_path / f"{name}.json"
        result = _invoke(detect, ["--server", serving.grpc, "--model", serving.detector, *spec,
                                  "--min-score", "0.0", "--resize", "160x120", "--coco-json", str(path), str(image_dir)])
        assert result.exit_code == 0, result.output
        outs[name] = json.loads(path.read_text())
    # Quantized weights move scores a little: same images, not bit-identical answers.
    assert {r["image_id"] for r in outs["v1"]} == {r["image_id"] for r in outs["wq"]}
    assert [r["score"] for r in outs["v1"]] != [r["score"] for r in outs["wq"]]


def test_classify_prints_top_k(serving, image_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"name{i}" for i in range(1000)))
    out = tmp_path / "top.json"
    result = _invoke(classify, ["--server", serving.grpc, "--model", serving.classifier, "--label", "weight_quant",
                                "--top-k", "3", "--batch-size", "4", "--label-map", str(labels), "--json", str(out),
                                str(image_dir)])
    assert result.exit_code == 0, result.output
    ranks = re.findall(r"^  ([123])\. (name\d+) (\d\.\d{4})$", result.stdout, flags=re.M)
    assert len(ranks) == 6 * 3
    data = json.loads(out.read_text())
    assert len(data) == 6 and all(len(d["top_k"]) == 3 for d in data)
    for d in data:
        scores = [t["score"] for t in d["top_k"]]
        assert scores == sorted(scores, reverse=True)
    # Without a label file: ImageNet-style index labels.
    plain = _invoke(classify, ["--server", serving.rest, "--rest", "--model", serving.classifier, "--version", "1",
                               "--top-k", "2", str(image_dir / "000001.jpg")])
    assert plain.exit_code == 0, plain.output
    assert re.search(r"^  1\. class_\d+ \d\.\d{4}$", plain.stdout, flags=re.M)


def test_detect_on_a_classifier_names_its_outputs(serving, image_dir) -> None:  # type: ignore[no-untyped-def]
    result = _invoke(detect, ["--server", serving.grpc, "--model", serving.classifier, str(image_dir)])
    assert isinstance(result.exception, UsageError)
    assert "no detection outputs" in str(result.exception) and "probabilities (float32" in str(result.exception)


def test_detect_unknown_label_is_tf_servings_message(serving, image_dir) -> None:  # type: ignore[no-untyped-def]
    result = _invoke(detect, ["--server", serving.grpc, "--model", serving.detector, "--label", "trt_int8", str(image_dir)])
    assert isinstance(result.exception, ServingClientError)
    assert str(result.exception) == "INVALID_ARGUMENT: Unrecognized servable version label: trt_int8"


def test_unreachable_server_is_one_error_line_from_the_real_cli(image_dir) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "tfsuite", "detect", "--server", f"127.0.0.1:{port}", "--model", "m", str(image_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach TF Serving at 127.0.0.1:{port}"), proc.stderr


def test_interrupt_stops_cleanly_and_keeps_what_was_done(serving, image_dir) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C simulated by raising KeyboardInterrupt from the request function on the 3rd call
    (a real SIGINT lands in the same place: between or inside a request)."""
    done: list[str] = []
    calls = 0
    with TFServingClient(serving.grpc, model=serving.detector) as client:

        def predict(inputs):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt
            return client.predict(inputs, version=1)

        summary = run_images(
            predict, collect_images([str(image_dir)]), InputPlan("image_tensor", "uint8", "raw"),
            lambda batch, out: done.extend(str(i.path) for i in batch), resize=(64, 64),
        )  # fmt: skip
    assert summary.interrupted and summary.requests == 2 and len(done) == 2 and summary.images == 2


def test_bad_cli_input_is_a_usage_error(serving, tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = _invoke(detect, ["--server", serving.grpc, "--model", serving.detector, str(tmp_path / "none.jpg")])
    assert isinstance(missing.exception, UsageError) and "no such image" in str(missing.exception)
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    bad_resize = _invoke(detect, ["--server", serving.grpc, "--model", serving.detector, "--resize", "big", str(img)])
    assert isinstance(bad_resize.exception, UsageError) and "WxH" in str(bad_resize.exception)
    both = _invoke(detect, ["--server", serving.grpc, "--model", serving.detector, "--version", "1", "--label", "x", str(img)])
    assert isinstance(both.exception, UsageError)


def test_real_ctrl_c_stops_cleanly_and_writes_what_was_done(serving, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGINT to a real ``tfsuite detect`` process once it has printed its first result."""
    import os
    import signal

    images = tmp_path / "many"
    images.mkdir()
    frame = np.random.default_rng(5).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    for i in range(400):
        cv2.imwrite(str(images / f"{i:06d}.png"), frame)
    coco = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsuite", "detect", "--server", serving.grpc, "--model", serving.detector,
         "--min-score", "0.0", "--coco-json", str(coco), str(images)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # waits for the first answered image, not for wall time
    assert first.startswith(str(images / "000000.png")), first
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    records = json.loads(coco.read_text())
    done = {r["image_id"] for r in records}
    assert 0 in done and len(done) < 400
