"""Seed 001's fan-out: one image list sharded over three embedded servers (ephemeral ports).

Every image is answered exactly once, the merged COCO JSON equals the one-server run's, and a
server stopped mid-run has the batch it was sending retried on the others: nothing is lost
and the summary names the dropped server.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tfsuite.cli import main
from tfsuite.clients.fanout import FanOutSummary, print_fanout_summary, run_sharded
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.labels import coco_label_map
from tfsuite.clients.outputs import DetectionWriter
from tfsuite.clients.pipeline import plan_input, signature_of

DETECTOR = "ssd_mobilenet_v2_tiny"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def three_servers(detector_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list]:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.model_config import (
        model_config_for,
        model_server_config,
        write_model_config,
    )

    config = model_server_config([model_config_for(DETECTOR, detector_base)])
    path = write_model_config(tmp_path_factory.mktemp("fanout") / "models.config", config)
    servers = [
        ModelServer(ServerOptions(port=-1, rest_api_port=0, model_config_file=str(path))).start()
        for _ in range(3)
    ]
    yield servers
    for server in servers:
        server.stop(grace=0)


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    import cv2

    d = tmp_path_factory.mktemp("fanout_images")
    rng = np.random.default_rng(3)
    paths = []
    for i in range(45):
        h, w = (240, 320) if i % 3 else (200, 300)
        img = np.full((h, w, 3), rng.integers(0, 255, 3), dtype=np.uint8)
        cv2.rectangle(
            img, (10, 20), (10 + w // 2, 20 + h // 2), rng.integers(0, 255, 3).tolist(), -1
        )
        paths.append(d / f"{i + 1:06d}.jpg")
        assert cv2.imwrite(str(paths[-1]), img)
    return paths


def _address(server: object) -> str:
    return f"127.0.0.1:{server.grpc_port}"  # type: ignore[attr-defined]


def _detect(
    clients: list[TFServingClient], paths: list[Path], **kw: object
) -> tuple[DetectionWriter, FanOutSummary, Counter[int]]:
    meta = clients[0].metadata(DETECTOR)
    plan = plan_input(signature_of(meta, None), DETECTOR, None, "raw")
    writer = DetectionWriter(paths, coco_label_map(), 0.05, echo=lambda _: None)
    seen: Counter[int] = Counter()
    after = kw.pop("after_batch", None)

    def on_batch(batch: list, out: dict) -> None:
        seen.update(item.index for item in batch)
        writer.on_batch(batch, out)
        if after is not None:
            after(sum(seen.values()))  # type: ignore[operator]

    def predict_on(client: TFServingClient):  # type: ignore[no-untyped-def]
        return lambda inputs: client.predict(inputs, DETECTOR, label="weight_quant")

    servers = [(c.address, predict_on(c)) for c in clients]
    summary = run_sharded(servers, paths, plan, on_batch, **kw)  # type: ignore[arg-type]
    return writer, summary, seen


def _coco(writer: DetectionWriter, tmp: Path, name: str) -> list:
    writer.write_coco(tmp / name)
    return json.loads((tmp / name).read_text())


def test_sharded_equals_one_server_and_uses_all(
    three_servers: list, many_images: list[Path], tmp_path: Path
) -> None:
    clients = [TFServingClient(_address(s)) for s in three_servers]
    try:
        # Same batches as the one-server run (TF's float sums depend on the batch size).
        single, _, _ = _detect(clients[:1], many_images, batch_size=2)
        sharded, summary, seen = _detect(clients, many_images, batch_size=2)
    finally:
        for c in clients:
            c.close()
    assert seen == Counter(range(len(many_images)))  # every image exactly once
    assert _coco(sharded, tmp_path, "sharded.json") == _coco(single, tmp_path, "single.json")
    assert summary.images == len(many_images) and summary.unanswered == 0
    assert sum(s.images for s in summary.servers) == len(many_images)
    assert all(s.failed is None for s in summary.servers)
    assert summary.image_sizes == Counter({(320, 240): 30, (300, 200): 15})
    assert summary.image_size_text() == "320x240 (+1 other size)"


def test_a_server_stopped_mid_run_has_its_images_retried(
    detector_base: Path, many_images: list[Path], tmp_path: Path
) -> None:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.model_config import (
        model_config_for,
        model_server_config,
        write_model_config,
    )

    config = model_server_config([model_config_for(DETECTOR, detector_base)])
    path = write_model_config(tmp_path / "models.config", config)
    servers = [
        ModelServer(ServerOptions(port=-1, rest_api_port=0, model_config_file=str(path))).start()
        for _ in range(3)
    ]
    victim = servers[1]
    stopped = threading.Event()

    def stop_victim(answered: int) -> None:
        # A fifth of the way through, the second server goes away for good.
        if answered >= len(many_images) // 5 and not stopped.is_set():
            stopped.set()
            victim.stop(grace=0)

    clients = [TFServingClient(_address(s)) for s in servers]
    try:
        single, _, _ = _detect(clients[:1], many_images)
        sharded, summary, seen = _detect(clients, many_images, after_batch=stop_victim)
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop(grace=0)
    assert stopped.is_set()
    assert seen == Counter(range(len(many_images)))  # nothing lost, nothing twice
    assert _coco(sharded, tmp_path, "sharded.json") == _coco(single, tmp_path, "single.json")
    dropped = summary.servers[1]
    assert dropped.failed is not None and dropped.failed in ("UNAVAILABLE", "CANCELLED")
    assert dropped.handed_back >= 1
    others = summary.servers[0].images + summary.servers[2].images
    assert dropped.images < len(many_images) and others + dropped.images == len(many_images)
    assert summary.unanswered == 0

    from rich.console import Console

    console = Console(record=True, width=160)
    print_fanout_summary(summary, console, "detect")
    text = console.export_text()
    assert f"dropped ({dropped.failed}): " in text and "retried on the others" in text
    assert "3 / 3" in text or "2 / 3" in text


def test_cli_two_servers_prints_seed_table_and_one_coco_json(
    three_servers: list,
    many_images: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = (_address(s) for s in three_servers[:2])
    out, csv_path = tmp_path / "all.json", tmp_path / "util.csv"
    args = ["detect", str(many_images[0].parent), "--model", DETECTOR, "--min-score", "0.05"]
    main(
        [*args, "--server", f"{a},{b}", "--coco-json", str(out), "--log-utilisation", str(csv_path)]
    )
    err = capsys.readouterr().err
    for column in ("# Image", "Image Size", "# Servers Used", "runtime (s)", "Average Utilization"):
        assert column in err
    assert "Per Server FPS" in err and "(CPU)" in err and "2 / 2" in err
    records = json.loads(out.read_text())
    assert {r["image_id"] for r in records} <= set(range(1, 46)) and records
    header, *rows = csv_path.read_text().splitlines()
    assert header == "t_s,cpu_system_pct,cpu_process_pct,gpu_util_pct,gpu_mem_mb" and rows
    main([*args, "--server", a, "--coco-json", str(tmp_path / "one.json")])
    assert json.loads((tmp_path / "one.json").read_text()) == records


def test_endpoints_file_and_server_list_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = tmp_path / "x.jpg"
    img.write_bytes(b"")
    base = ["detect", str(img), "--model", "m"]
    for args, text in (
        (["--server", "a:1,a:1"], "lists a server twice"),
        (["--server", "nohost"], "takes HOST:PORT"),
        (["--endpoints", str(tmp_path / "none.json")], "tfsuite up CONFIG_DIR"),
        (["--endpoints", str(tmp_path), "--server", "a:1"], "not both"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *args])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and text in err and "\n" not in err, err
