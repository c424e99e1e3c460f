"""Serving containers: start them for a plan, wait until every version is AVAILABLE, remove them.

Every object ``up`` creates (one network, the containers) carries the ``tfsuite`` label and
``tfsuite.run=<run id>``; ``down`` removes by those labels, so it removes exactly one run's
objects and nothing else. If anything fails while starting, what was started is removed
before the error is raised (Ctrl-C too).
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import DeviceRequest

from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.deploy.endpoints import Endpoint, EndpointsFile, ModelVersions
from tfsuite.deploy.engine import LABEL, RUN_LABEL
from tfsuite.deploy.errors import DeployError
from tfsuite.deploy.plan import DeploymentPlan

__all__ = [
    "LOG_TAIL_LINES",
    "RunObjects",
    "ServingRequest",
    "ensure_image",
    "list_runs",
    "remove_run",
    "start",
]

log = logging.getLogger(__name__)

#: How much of a failed container's log ``up`` prints.
LOG_TAIL_LINES = 30
GRPC_PORT, REST_PORT = "8500/tcp", "8501/tcp"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ServingRequest:
    """What ``tfsuite up`` was asked for, already checked against the engine."""

    image: str
    replicas: int
    gpus: list[str] | None
    """One container per GPU index; None: no GPU (or all GPUs in one container, ``all_gpus``)."""
    all_gpus: bool = False
    host: str = "127.0.0.1"
    port: int = 8500
    """gRPC port of the first container; REST is port + 1, the next container port + 2 ...
    0: the engine picks free ports."""
    timeout_s: float = 300.0

    @property
    def count(self) -> int:
        return len(self.gpus) if self.gpus else self.replicas

    def host_ports(self, index: int) -> tuple[int | None, int | None]:
        if self.port == 0:
            return None, None
        return self.port + 2 * index, self.port + 2 * index + 1


@dataclass(frozen=True)
class RunObjects:
    """One run's containers and networks, found by label."""

    run_id: str
    containers: list[Any]
    networks: list[Any]


def ensure_image(client: Any, image: str) -> None:
    """The image is present locally, or pulled; else one line saying how to get it."""
    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    log.info("pulling %s", image)
    try:
        client.images.pull(image)
    except DockerException as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DeployError(
            f"image {image} is not present locally and cannot be pulled ({reason}); "
            "pull or load it (docker load), build the suite image with `make image` and pass "
            "--image tfsuite:latest, or pick one that `docker images` lists"
        ) from None


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port left in TIME_WAIT by a previous run is free for the engine too;
        # only a live listener makes this bind fail.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host != "0.0.0.0" else "", port))
        except OSError:
            raise DeployError(
                f"port {port} on {host} is already in use; choose another with --port "
                "(each container takes two: gRPC and REST), or --port 0 for free ports"
            ) from None


def _labels(run_id: str, **extra: str) -> dict[str, str]:
    return {LABEL: "1", RUN_LABEL: run_id, **extra}


def _published(container: Any, port: str, host: str) -> str:
    container.reload()
    bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port) or []
    if not bound:
        raise DeployError(f"container {container.name} has no published {port}")
    address = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"{address}:{bound[0]['HostPort']}"


def _log_tail(container: Any, echo: Echo) -> None:
    try:
        text = container.logs(tail=LOG_TAIL_LINES).decode(errors="replace")
    except DockerException as exc:
        text = f"(no logs: {exc})"
    echo(f"--- last {LOG_TAIL_LINES} log lines of {container.name} ---")
    for line in text.rstrip().splitlines():
        echo(f"  {line}")


def start(
    client: Any,
    plan: DeploymentPlan,
    request: ServingRequest,
    *,
    echo: Echo,
    on_ready: Callable[[Endpoint], None] | None = None,
) -> EndpointsFile:
    """Start ``request.count`` containers on ``plan``, wait until every version is AVAILABLE.

    On any failure (or Ctrl-C) the run's containers and network are removed, the failing
    container's last log lines are echoed, and ``DeployError`` says what happened.
    """
    for i in range(request.count):
        for port in request.host_ports(i):
            if port is not None:
                _check_port_free(request.host, port)
    run_id = uuid.uuid4().hex[:10]
    created: list[Any] = []
    try:
        network = client.networks.create(f"tfsuite-{run_id}", labels=_labels(run_id))
        for i in range(request.count):
            created.append(_run_container(client, plan, request, run_id, i, network.name))
        endpoints = [
            Endpoint(
                container=c.name,
                container_id=c.short_id,
                grpc=_published(c, GRPC_PORT, request.host),
                rest=_published(c, REST_PORT, request.host),
                gpu=request.gpus[i] if request.gpus else ("all" if request.all_gpus else None),
            )
            for i, c in enumerate(created)
        ]
        deadline = time.monotonic() + request.timeout_s
        for container, endpoint in zip(created, endpoints):
            try:
                wait_available(container, endpoint, plan, deadline)
            except DeployError:
                _log_tail(container, echo)
                raise
            if on_ready is not None:
                on_ready(endpoint)
    except BaseException:
        remove_run(client, run_id)
        raise
    return EndpointsFile(
        run_id=run_id,
        image=request.image,
        config_dir=str(plan.config_dir),
        models={m.name: ModelVersions(versions=m.versions, labels=m.labels) for m in plan.models},
        endpoints=endpoints,
    )


def _run_container(
    client: Any, plan: DeploymentPlan, request: ServingRequest, run_id: str, index: int, net: str
) -> Any:
    grpc_port, rest_port = request.host_ports(index)
    devices = None
    if request.gpus:
        devices = [DeviceRequest(device_ids=[request.gpus[index]], capabilities=[["gpu"]])]
    elif request.all_gpus:
        devices = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    name = f"tfsuite-{run_id}-{index}"
    try:
        # create + start (not run): a start failure (port taken, bad device) still leaves
        # a container object to remove, and its name is known.
        container = client.containers.create(
            request.image,
            command=plan.flags,
            name=name,
            labels=_labels(run_id, **{"tfsuite.index": str(index)}),
            ports={GRPC_PORT: (request.host, grpc_port), REST_PORT: (request.host, rest_port)},
            volumes={str(plan.config_dir): {"bind": plan.mount_point, "mode": "ro"}},
            network=net,
            device_requests=devices,
            detach=True,
        )
        container.start()
    except APIError as exc:
        detail = " ".join(str(exc.explanation or exc).split())[:240]
        if "address already in use" in detail or "port is already allocated" in detail:
            raise DeployError(
                f"cannot publish {grpc_port}/{rest_port} on {request.host}: already in use; "
                "choose another --port, or --port 0 for free ports"
            ) from None
        raise DeployError(f"cannot start {name} from {request.image}: {detail}") from None
    return container


def _states(client: TFServingClient, model: str) -> dict[int, tuple[str, str]]:
    return {s.version: (s.state, s.error_message) for s in client.status(model, timeout=5.0)}


def wait_available(
    container: Any, endpoint: Endpoint, plan: DeploymentPlan, deadline: float
) -> None:
    """Poll GetModelStatus until every planned version of every model is AVAILABLE.

    Fails early when the container exits or a version ends in error (state END).
    """
    client = TFServingClient(endpoint.grpc)
    pending = {m.name: set(m.versions) for m in plan.models}
    last = "no answer yet"
    try:
        while pending:
            for model in list(pending):
                try:
                    states = _states(client, model)
                except ServingClientError as exc:
                    # Unreachable: TF Serving opens its ports once the models have loaded.
                    last = f"its gRPC port to answer ({exc.code.name}: {exc.message[:80]})"
                    break
                for version in list(pending[model]):
                    state, error = states.get(version, ("not listed", ""))
                    if state == "AVAILABLE":
                        pending[model].discard(version)
                    elif state == "END":
                        raise DeployError(
                            f"{container.name}: version {version} of {model} failed to load: "
                            f"{error or 'state END'}"
                        )
                    else:
                        last = f"{model} version {version}: {state}"
                if not pending[model]:
                    del pending[model]
            if not pending:
                return
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise DeployError(f"{container.name} exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                raise DeployError(
                    f"{container.name} was not ready in time (waiting for {last}); raise "
                    "--timeout, or see its log above"
                )
            time.sleep(0.5)  # readiness poll of a process in another container
    finally:
        client.close()


def list_runs(client: Any, run_id: str | None = None) -> list[RunObjects]:
    """The tfsuite runs on this engine (or one of them), by label."""
    label = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    filters = {"label": [LABEL, label]}
    containers = client.containers.list(all=True, filters=filters)
    networks = client.networks.list(filters=filters)
    runs: dict[str, RunObjects] = {}
    for obj in [*containers, *networks]:
        rid = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        key = rid.get(RUN_LABEL, "?")
        run = runs.setdefault(key, RunObjects(key, [], []))
        (run.containers if obj in containers else run.networks).append(obj)
    return [runs[k] for k in sorted(runs)]


def remove_run(client: Any, run_id: str) -> tuple[int, int]:
    """Remove one run's containers (forced) and networks; (containers, networks) removed."""
    removed_c = removed_n = 0
    for run in list_runs(client, run_id):
        for container in run.containers:
            try:
                container.remove(force=True, v=True)
                removed_c += 1
            except NotFound:
                pass
        for network in run.networks:
            try:
                network.remove()
                removed_n += 1
            except NotFound:
                pass
    return removed_c, removed_n
