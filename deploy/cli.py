"""``tfsuite up`` / ``tfsuite down`` / ``tfsuite status``: serving containers on a Docker engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tfsuite.deploy.endpoints import ENDPOINTS_FILE, EndpointsFile
from tfsuite.deploy.errors import DeployError
from tfsuite.errors import UsageError

__all__ = ["down", "status", "up"]

log = logging.getLogger(__name__)


def _gpu_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or not all(v.isdigit() for v in items) or len(set(items)) != len(items):
        raise UsageError(f"--gpus takes distinct GPU indices like 0,1; not {value!r}")
    return items


@click.command()
@click.argument("config_dir", type=click.Path(path_type=Path))
@click.option(
    "--image",
    default=None,
    help="Serving image [default: tensorflow/serving:2.17.1-gpu with a GPU runtime, "
    "else tensorflow/serving:2.17.1]; e.g. tfsuite:latest (make image).",
)
@click.option("--cpu", is_flag=True, help="Serve on CPU even where a GPU runtime exists.")
@click.option("--gpus", default=None, help="One container per GPU: indices, e.g. 0,1 (seed 001).")
@click.option(
    "--replicas",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Containers on CPU (each with its own ports).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Host address the ports are published on (0.0.0.0 for every interface).",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65534),
    default=8500,
    show_default=True,
    help="gRPC port of the first container; REST is +1, the next container +2, ... "
    "0: free ports chosen by the engine.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for every version to be AVAILABLE.",
)
def up(
    config_dir: Path,
    image: str | None,
    cpu: bool,
    gpus: str | None,
    replicas: int,
    host: str,
    port: int,
    timeout: float,
) -> None:
    """Serve CONFIG_DIR (written by `tfsuite configs`) in Docker containers; wait until ready.

    \b
    The dir is mounted read-only; the server gets --model_config_file and, when present,
    --enable_batching --batching_parameters_file and --monitoring_config_file from it.
    Prints one endpoint line per container and writes CONFIG_DIR/endpoints.json (for
    `tfsuite detect/classify --endpoints`, `tfsuite down`).
    """
    from tfsuite.deploy.containers import ServingRequest, ensure_image, remove_run, start
    from tfsuite.deploy.engine import connect, gpu_runtime
    from tfsuite.deploy.plan import CPU_IMAGE, GPU_IMAGE, DeploymentPlan, check_image_serves

    gpu_ids = _gpu_list(gpus)
    if gpu_ids and cpu:
        raise UsageError("give --gpus or --cpu, not both")
    if gpu_ids and replicas != 1:
        raise UsageError("--gpus starts one container per GPU; --replicas is for CPU serving")
    plan = DeploymentPlan.from_config_dir(config_dir)
    client = connect()
    has_gpu = gpu_runtime(client)
    if gpu_ids and not has_gpu:
        raise DeployError(
            "--gpus was given but this Docker engine has no NVIDIA runtime "
            "(install nvidia-container-toolkit); serve on CPU with --cpu or --replicas N"
        )
    use_gpu = bool(gpu_ids) or (has_gpu and not cpu)
    image = image or (GPU_IMAGE if use_gpu else CPU_IMAGE)
    check_image_serves(image, plan, gpu=use_gpu)
    ensure_image(client, image)
    request = ServingRequest(
        image=image,
        replicas=replicas,
        gpus=gpu_ids,
        all_gpus=use_gpu and not gpu_ids,
        host=host,
        port=port,
        timeout_s=timeout,
    )
    err = Console(stderr=True)
    versions = ", ".join(f"{m.name} {m.versions}" for m in plan.models)
    err.print(
        f"starting {request.count} container(s) of {image} on {plan.config_dir} "
        f"(mounted read-only at {plan.mount_point}); waiting for {versions}",
        markup=False,
        highlight=False,
    )
    with err.status("waiting for every version to be AVAILABLE"):
        endpoints = start(
            client,
            plan,
            request,
            echo=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
            on_ready=lambda e: err.print(f"ready: {e.container}", markup=False, highlight=False),
        )
    try:
        path = endpoints.write(plan.config_dir)
    except BaseException:
        remove_run(client, endpoints.run_id)  # a run nobody can find again is not left behind
        raise
    for e in endpoints.endpoints:
        gpu = f" gpu={e.gpu}" if e.gpu else ""
        click.echo(f"{e.container}  grpc={e.grpc}  rest={e.rest}{gpu}")
    err.print(f"wrote {path}; stop with: tfsuite down {config_dir}", markup=False, highlight=False)


@click.command()
@click.argument("config_dir", type=click.Path(path_type=Path), required=False)
@click.option("--run", "run_id", default=None, help="Run id to remove (default: CONFIG_DIR's).")
@click.option("--all", "remove_all", is_flag=True, help="Remove every tfsuite run on this engine.")
def down(config_dir: Path | None, run_id: str | None, remove_all: bool) -> None:
    """Remove what `tfsuite up CONFIG_DIR` started (by its run id), and nothing else."""
    from tfsuite.deploy.containers import list_runs, remove_run
    from tfsuite.deploy.engine import connect

    if sum(x is not None and x is not False for x in (config_dir, run_id, remove_all or None)) != 1:
        raise UsageError("give CONFIG_DIR, --run ID or --all (one of them)")
    recorded: EndpointsFile | None = None
    if config_dir is not None:
        recorded = EndpointsFile.read(config_dir)
        run_id = recorded.run_id
    client = connect()
    runs = [r.run_id for r in list_runs(client)] if remove_all else [run_id]
    total_c = total_n = 0
    for rid in runs:
        assert rid is not None
        c, n = remove_run(client, rid)
        total_c, total_n = total_c + c, total_n + n
    if config_dir is not None and recorded is not None:
        # The file names ports that are now closed: it goes with the run.
        (config_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
    what = ", ".join(runs) if runs else "none found"
    click.echo(f"removed {total_c} container(s) and {total_n} network(s) of run(s) {what}")


def _version_states(grpc: str, models: list[str]) -> str:
    from tfsuite.clients.errors import ServingClientError
    from tfsuite.clients.grpc_client import TFServingClient

    parts = []
    with TFServingClient(grpc) as client:
        for model in models:
            try:
                states = client.status(model, timeout=3.0)
            except ServingClientError as exc:
                parts.append(f"{model}: {exc.code.name}")
                continue
            parts.append(f"{model}: " + ", ".join(f"{s.version} {s.state}" for s in states))
    return "; ".join(parts) or "-"


def _models_of(container: Any) -> list[str]:
    from tfsuite.deploy.plan import DeploymentPlan

    mounts = container.attrs.get("Mounts") or []
    for mount in mounts:
        try:
            return [m.name for m in DeploymentPlan.from_config_dir(Path(mount["Source"])).models]
        except (DeployError, KeyError):
            continue
    return []


@click.command()
def status() -> None:
    """List the running tfsuite containers with their ports and model/version states."""
    from tfsuite.deploy.containers import GRPC_PORT, REST_PORT, list_runs
    from tfsuite.deploy.engine import connect

    client = connect()
    rows = 0
    for run in list_runs(client):
        for c in run.containers:
            ports = c.attrs.get("NetworkSettings", {}).get("Ports") or {}

            def addr(port: str, ports: dict[str, Any] = ports) -> str:
                bound = ports.get(port) or []
                return f"{bound[0]['HostIp'] or '0.0.0.0'}:{bound[0]['HostPort']}" if bound else "-"

            grpc, rest = addr(GRPC_PORT), addr(REST_PORT)
            states = _version_states(grpc, _models_of(c)) if c.status == "running" else "-"
            image = (c.attrs.get("Config") or {}).get("Image", "?")
            click.echo(
                f"{c.name}  run={run.run_id}  {c.status}  grpc={grpc}  rest={rest}  "
                f"image={image}  {states}"
            )
            rows += 1
    if rows == 0:
        click.echo("no tfsuite containers on this engine")
