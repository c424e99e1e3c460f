"""``tfsuite detect`` / ``tfsuite classify`` against ``tfsuite serve`` as its own process (port
chosen by the server, read from its start-up lines), serving the exported bundled models."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tfsuite.serving_configs.model_config import (
    model_config_for,
    model_server_config,
    write_model_config,
)


def _tfsuite(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsuite", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_detect_and_classify_clis_against_a_serve_process(
    detector_base: Path, classifier_base: Path, image_dir: Path, tmp_path: Path, launch_serve
) -> None:
    config = model_server_config(
        [model_config_for("ssd", detector_base), model_config_for("mobilenet", classifier_base)]
    )
    models_config = write_model_config(tmp_path / "models.config", config)
    with launch_serve(
        ["--port=-1", "--rest_api_port=-1", f"--model_config_file={models_config}"]
    ) as served:
        coco = tmp_path / "weight_quant.json"
        detected = _tfsuite(
            "detect",
            image_dir,
            "--server",
            f"127.0.0.1:{served.grpc_port}",
            "--model",
            "ssd",
            "--label",
            "weight_quant",
            "--min-score",
            "0.3",
            "--coco-json",
            coco,
        )
        assert detected.returncode == 0, detected.stderr
        records = json.loads(coco.read_text())
        assert records and {"image_id", "category_id", "bbox", "score"} == set(records[0])
        assert " at [" in detected.stdout  # `label at [x1,y1,x2,y2] score` lines

        classified = _tfsuite(
            "classify",
            image_dir,
            "--server",
            f"127.0.0.1:{served.rest_port}",
            "--rest",
            "--model",
            "mobilenet",
            "--version",
            "1",
            "--top-k",
            "3",
        )
        assert classified.returncode == 0, classified.stderr
        ranks = [
            line.split()[0] for line in classified.stdout.splitlines() if line.strip()[:1].isdigit()
        ]
        assert ranks and set(ranks) == {"1.", "2.", "3."}, classified.stdout

        unknown = _tfsuite(
            "detect",
            image_dir,
            "--server",
            f"127.0.0.1:{served.grpc_port}",
            "--model",
            "ssd",
            "--label",
            "no_such_label",
        )
        assert unknown.returncode != 0
        assert unknown.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "Unrecognized servable version label: no_such_label" in unknown.stderr

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0
