"""``tfsuite detect`` / ``tfsuite classify`` against the embedded server (CliRunner, in-process)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from tfsuite.clients.cli import classify, detect
from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.images import collect_images
from tfsuite.clients.pipeline import InputPlan, run_images
from tfsuite.errors import UsageError

pytestmark = pytest.mark.slow

LINE = re.compile(r"^  (.+) at \[(-?\d+),(-?\d+),(-?\d+),(-?\d+)\] (\d\.\d{3})$")


def _run(command: click.Command, server: str, model: str, *args: Any) -> Result:
    argv = ["--server", server, "--model", model, *map(str, args)]
    return CliRunner().invoke(command, argv, catch_exceptions=True)


def _readable(image_dir: Path) -> list[Path]:
    return [p for p in sorted(image_dir.iterdir()) if p.name != "000099.jpg"]


def _free_port() -> int:
    with socket.socket() as s:  # bind, read the port, close: nothing listens there after
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("spec", [["--version", "1"], ["--label", "weight_quant", "--rest"]])
def test_detect_writes_coco_json_annotated_images_and_per_image_json(
    serving: Any, image_dir: Path, tmp_path: Path, spec: list[str]
) -> None:
    server = serving.rest if "--rest" in spec else serving.grpc
    coco = tmp_path / "dets.json"
    result = _run(
        detect, server, serving.detector, *spec, "--batch-size", 2, "--min-score", 0.3,
        "--coco-json", coco, "--draw", tmp_path / "drawn", "--out", tmp_path / "per_image",
        image_dir,
    )  # fmt: skip
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
    boxes = [m for m in (LINE.match(line) for line in result.stdout.splitlines()) if m]
    assert len(boxes) == len(records)
    first = records[0]
    x1, y1 = int(boxes[0][2]), int(boxes[0][3])
    assert [x1, y1] == [round(first["bbox"][0]), round(first["bbox"][1])]

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


def test_detect_version_and_label_answer_differently(
    serving: Any, image_dir: Path, tmp_path: Path
) -> None:
    outs = {}
    for name, spec in {"v1": ["--version", "1"], "wq": ["--label", "weight_quant"]}.items():
        path = tmp_path / f"{name}.json"
        result = _run(
            detect, serving.grpc, serving.detector, *spec, "--min-score", 0.0, "--progress",
            "--resize", "160x120", "--coco-json", path, image_dir,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outs[name] = json.loads(path.read_text())
    # Quantized weights move scores a little: same images, not bit-identical answers.
    assert {r["image_id"] for r in outs["v1"]} == {r["image_id"] for r in outs["wq"]}
    assert [r["score"] for r in outs["v1"]] != [r["score"] for r in outs["wq"]]


def test_classify_prints_top_k(serving: Any, image_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"name{i}" for i in range(1000)))
    out = tmp_path / "top.json"
    result = _run(
        classify, serving.grpc, serving.classifier, "--label", "weight_quant", "--top-k", 3,
        "--batch-size", 4, "--label-map", labels, "--json", out, image_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ranks = re.findall(r"^  ([123])\. (name\d+) (\d\.\d{4})$", result.stdout, flags=re.MULTILINE)
    assert len(ranks) == 6 * 3
    data = json.loads(out.read_text())
    assert len(data) == 6 and all(len(d["top_k"]) == 3 for d in data)
    for d in data:
        scores = [t["score"] for t in d["top_k"]]
        assert scores == sorted(scores, reverse=True)
    # Without a label file: ImageNet-style index labels.
    plain = _run(
        classify, serving.rest, serving.classifier, "--rest", "--version", 1, "--top-k", 2,
        image_dir / "000001.jpg",
    )  # fmt: skip
    assert plain.exit_code == 0, plain.output
    assert re.search(r"^  1\. class_\d+ \d\.\d{4}$", plain.stdout, flags=re.MULTILINE)


def test_detect_on_a_classifier_names_its_outputs(serving: Any, image_dir: Path) -> None:
    result = _run(detect, serving.grpc, serving.classifier, image_dir)
    assert isinstance(result.exception, UsageError)
    assert "no detection outputs" in str(result.exception)
    assert "probabilities (float32" in str(result.exception)


def test_detect_unknown_label_is_tf_servings_message(serving: Any, image_dir: Path) -> None:
    result = _run(detect, serving.grpc, serving.detector, "--label", "trt_int8", image_dir)
    assert isinstance(result.exception, ServingClientError)
    message = "INVALID_ARGUMENT: Unrecognized servable version label: trt_int8"
    assert str(result.exception) == message


def test_unreachable_server_is_one_error_line_from_the_real_cli(image_dir: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "tfsuite", "detect", "--server", address, "--model", "m",
         str(image_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: cannot reach TF Serving at {address}"), proc.stderr


def test_interrupt_stops_cleanly_and_keeps_what_was_done(serving: Any, image_dir: Path) -> None:
    """Ctrl-C simulated by raising KeyboardInterrupt from the request function on the 3rd call
    (a real SIGINT lands in the same place: between or inside a request)."""
    done: list[str] = []
    calls = 0
    with TFServingClient(serving.grpc, model=serving.detector) as client:

        def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt
            return client.predict(inputs, version=1)  # type: ignore[no-any-return]

        summary = run_images(
            predict,
            collect_images([str(image_dir)]),
            InputPlan("image_tensor", "uint8", "raw"),
            lambda batch, out: done.extend(str(i.path) for i in batch),
            resize=(64, 64),
        )
    assert summary.interrupted and summary.requests == 2 and len(done) == 2 and summary.images == 2


def test_bad_cli_input_is_a_usage_error(serving: Any, tmp_path: Path) -> None:
    missing = _run(detect, serving.grpc, serving.detector, tmp_path / "none.jpg")
    assert isinstance(missing.exception, UsageError) and "no such image" in str(missing.exception)
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    bad_resize = _run(detect, serving.grpc, serving.detector, "--resize", "big", img)
    assert isinstance(bad_resize.exception, UsageError) and "WxH" in str(bad_resize.exception)
    both = _run(detect, serving.grpc, serving.detector, "--version", 1, "--label", "x", img)
    assert isinstance(both.exception, UsageError)
    # Out-of-range numbers are refused by click before anything connects.
    for option, value in [("--batch-size", 0), ("--max-message-mb", 0), ("--timeout", 0),
                          ("--min-score", 1.5)]:  # fmt: skip
        bad = _run(detect, serving.grpc, serving.detector, option, value, img)
        assert bad.exit_code == 2 and f"Invalid value for '{option}'" in bad.output, bad.output
    bad_k = _run(classify, serving.grpc, serving.classifier, "--top-k", 0, img)
    assert bad_k.exit_code == 2 and "Invalid value for '--top-k'" in bad_k.output


def test_real_ctrl_c_stops_cleanly_and_writes_what_was_done(serving: Any, tmp_path: Path) -> None:
    """SIGINT to a real ``tfsuite detect`` process once it has printed its first result."""
    images = tmp_path / "many"
    images.mkdir()
    frame = np.random.default_rng(5).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    for i in range(400):
        cv2.imwrite(str(images / f"{i:06d}.png"), frame)
    coco = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsuite", "detect", "--server", serving.grpc,
         "--model", serving.detector, "--min-score", "0.0", "--coco-json", str(coco), str(images)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # waits for the first answered image, not for wall time
    assert first.startswith(str(images / "000000.png")), first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    done = {r["image_id"] for r in json.loads(coco.read_text())}
    assert 0 in done and len(done) < 400


def test_detect_with_no_readable_image_fails(serving: Any, image_dir: Path) -> None:
    result = _run(detect, serving.grpc, serving.detector, image_dir / "000099.jpg")
    assert result.exit_code != 0
    assert "none of the 1 image(s) could be read" in str(result.exception)
