"""compose/docker-compose.yml, validated by a real compose implementation (Debian's docker-compose).

``docker-compose config`` resolves the file with its variables (interpolation, ``${VAR:?}``
errors, YAML merge keys) for every combination of profiles. Its output is read back as data
(with the YAML library docker-compose itself runs on) and checked: the serving command lines,
with the flags the images' entrypoints prepend, parse as ``tfsuite serve`` flags; the GPU
reservation is where it must be and nowhere else; the healthcheck needs nothing the
tensorflow/serving image lacks; `.env.example` documents exactly the stack's variables.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tfsuite.server.flags import parse_flags

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
STACK = COMPOSE_DIR / "docker-compose.yml"
PROFILES = ("serving", "cpu", "monitoring", "loadtest", "export")
SERVICES = {
    "serving": {"tfserving"},
    "cpu": {"tfserving-cpu"},
    "monitoring": {"prometheus"},
    "loadtest": {"locust-master", "locust-worker"},
    "export": {"exporter"},
}
#: What tensorflow/serving's tf_serving_entrypoint.sh (and compose/tfsuite-entrypoint.sh) put
#: before the container's arguments, with the images' MODEL_NAME/MODEL_BASE_PATH defaults.
ENTRYPOINT_FLAGS = [
    "--port=8500",
    "--rest_api_port=8501",
    "--model_name=model",
    "--model_base_path=/models/model",
]


def _compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return path


def compose_config(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The resolved stack as data; raises CalledProcessError with compose's message if invalid."""
    exe = _compose()
    args = [
        exe,
        "-f",
        str(STACK),
        *itertools.chain.from_iterable(("--profile", p) for p in profiles),
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    environ.update(env if env is not None else {"MODELS_DIR": "/srv/models"})
    text = subprocess.run(
        [*args, "config"], capture_output=True, text=True, check=True, env=environ
    ).stdout
    # docker-compose is a Python program; its interpreter has the YAML library it parses with.
    interpreter = Path(exe).read_text().splitlines()[0].removeprefix("#!").split()
    as_json = subprocess.run(
        [
            *interpreter,
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(as_json)


def _combinations() -> list[tuple[str, ...]]:
    return [c for n in range(1, len(PROFILES) + 1) for c in itertools.combinations(PROFILES, n)]


@pytest.mark.parametrize("profiles", _combinations(), ids=lambda c: "+".join(c))
def test_every_profile_combination_resolves(profiles: tuple[str, ...]) -> None:
    config = compose_config(*profiles)
    services = config["services"]
    for profile in profiles:
        for name in SERVICES[profile]:
            # compose 1.29's `config` lists every service; each is gated by its own profile.
            assert services[name]["profiles"] == [profile], (name, services[name])
    assert set(services) == set().union(*SERVICES.values())
    # Interpolation resolved everything: no ${...} left anywhere.
    assert "${" not in json.dumps(config)


def test_models_dir_is_required_with_a_message() -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        compose_config("cpu", env={})
    assert "set MODELS_DIR" in err.value.stderr


@pytest.mark.parametrize("service", ["tfserving", "tfserving-cpu"])
def test_serving_command_composes_with_the_entrypoint_flags(service: str) -> None:
    svc = compose_config("serving", "cpu")["services"][service]
    command = svc["command"]
    # The entrypoint supplies the ports and model name/base path; compose must not fight it.
    assert not any(f.startswith(("--port=", "--rest_api_port=", "--model_name")) for f in command)
    options = parse_flags([*ENTRYPOINT_FLAGS, *command])
    assert (options.port, options.rest_api_port) == (8500, 8501)
    # --model_config_file wins over the prepended --model_name/--model_base_path.
    assert options.model_config_file == "/models/models.config"
    assert options.enable_batching
    assert options.batching_parameters_file == "/models/batching_parameters.txt"
    assert options.monitoring_config_file == "/models/monitoring.config"
    # compose 1.29 prints the short syntax ("SRC:DST:ro", "IP:HOST:CONTAINER/tcp").
    assert svc["volumes"] == ["/srv/models:/models:ro"]
    assert sorted(svc["ports"]) == ["127.0.0.1:8500:8500/tcp", "127.0.0.1:8501:8501/tcp"]


def test_gpu_reservation_only_on_gpu_services() -> None:
    services = compose_config(*PROFILES, env={"MODELS_DIR": "/srv/models", "GPU_DEVICE": "3"})[
        "services"
    ]
    for name, svc in services.items():
        devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
        if name in ("tfserving", "exporter"):
            assert devices and devices[0]["driver"] == "nvidia", name
            assert devices[0]["capabilities"] == ["gpu"]
        else:
            assert not devices, name
    gpu = services["tfserving"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["device_ids"] == ["3"]
    # The CPU override keeps the service name the other services use.
    assert services["tfserving-cpu"]["networks"]["default"]["aliases"] == ["tfserving"]


def test_healthcheck_needs_only_bash() -> None:
    for name in ("tfserving", "tfserving-cpu"):
        test = compose_config("serving", "cpu")["services"][name]["healthcheck"]["test"]
        script = " ".join(test)
        assert test[:3] == ["CMD", "bash", "-c"]
        assert "/dev/tcp/127.0.0.1/8501" in script and '"AVAILABLE"' in script
        assert not re.search(r"\b(curl|wget|python)\b", script), script


def test_loadtest_workers_scale() -> None:
    services = compose_config("loadtest")["services"]
    worker = services["locust-worker"]
    # Scalable: no fixed container name and no published port to collide on.
    assert "container_name" not in worker and "ports" not in worker
    assert "--worker" in worker["command"] and "--master-host=locust-master" in worker["command"]
    assert "--master" in services["locust-master"]["command"]
    assert services["locust-master"]["command"][2] == "/opt/tfsuite/locustfile.py"


def test_env_example_documents_every_variable() -> None:
    used = set(re.findall(r"\$\{(\w+)", STACK.read_text()))
    documented = set(
        re.findall(r"^(\w+)=", (COMPOSE_DIR / ".env.example").read_text(), flags=re.MULTILINE)
    )
    assert used == documented, {"undocumented": used - documented, "unused": documented - used}
    # And with every documented value set, the stack still resolves.
    env = dict(
        line.split("=", 1)
        for line in (COMPOSE_DIR / ".env.example").read_text().splitlines()
        if re.match(r"^\w+=", line)
    )
    services = compose_config(*PROFILES, env=env)["services"]
    assert services["tfserving"]["environment"]["MODEL_NAME"] == env["MODEL_NAME"]
