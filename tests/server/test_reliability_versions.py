"""Reliability of model management (issue 10, cases 3, 4 and 5).

- A broken new version never takes a model dark: the old version is unloaded only once a
  newer aspired one is AVAILABLE (TF Serving's AvailabilityPreservingPolicy).
- A version that is waiting to retry its load blocks neither ReloadConfig nor the config
  file poll.
- A config change is applied whole or not at all (labels checked first), with one log line.

Real servers on ephemeral ports, real gRPC, models with real variables; a "broken" version
is a real SavedModel whose ``saved_model.pb`` was cut in half.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from google.protobuf import text_format
from log_records import LogRecords  # type: ignore[import-not-found]
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfsuite.atomic import atomic_write_dir
from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

WAIT = 60.0  # upper bound of every wait on a state change (never a sleep)
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
LOADING = get_model_status_pb2.ModelVersionStatus.LOADING
END = get_model_status_pb2.ModelVersionStatus.END


def publish_half_cut(base: Path, version: int, src: Path) -> Path:
    """Publish ``src`` as ``base/<version>`` atomically, with saved_model.pb cut in half."""

    def write(tmp: Path) -> None:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        pb = tmp / "saved_model.pb"
        pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])

    return atomic_write_dir(base / str(version), write)


def _predict(name: str = "m", **spec: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if "label" in spec:
        request.model_spec.version_label = str(spec["label"])
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([2.0], np.float32)))
    return request


class _Load:
    """Threads sending Predict on Latest over real gRPC until the ``with`` block ends.

    ``served``: the version of every answer; ``failures``: every error (any fails a test).
    """

    def __init__(self, port: int, threads: int = 3) -> None:
        self.served: list[int] = []
        self.failures: list[str] = []
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._done = threading.Event()
        self._progress = threading.Condition()
        self._workers = [threading.Thread(target=self._loop) for _ in range(threads)]

    def _loop(self) -> None:
        while not self._done.is_set():
            try:
                response = self._stub.Predict(_predict(), timeout=30)
            except grpc.RpcError as err:
                self.failures.append(f"{err.code().name}: {err.details()}")
                continue
            y = float(make_ndarray(response.outputs["y"])[0])
            version = response.model_spec.version.value
            if y != {6: 3.0, 7: 4.0}.get(version):  # half_plus_two v6, half_plus_three v7
                self.failures.append(f"version {version} answered {y}")
            with self._progress:
                self.served.append(version)
                self._progress.notify_all()

    def more(self, n: int) -> None:
        """Wait until ``n`` more answers have arrived."""
        with self._progress:
            target = len(self.served) + n
            assert self._progress.wait_for(lambda: len(self.served) >= target, WAIT)

    def until(self, predicate: Callable[[list[int]], bool]) -> None:
        with self._progress:
            assert self._progress.wait_for(lambda: predicate(self.served), WAIT)

    def __enter__(self) -> _Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for worker in self._workers:
            worker.join(WAIT)
        self._channel.close()


def _statuses(
    channel: grpc.Channel, name: str
) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": name}), timeout=30
    )
    return {s.version: s for s in response.model_version_status}


def _states(channel: grpc.Channel, name: str) -> dict[int, int]:
    return {v: s.state for v, s in _statuses(channel, name).items()}


_STATE_NAMES = {AVAILABLE: "AVAILABLE", LOADING: "LOADING", END: "END"}


def _wait_states(
    server: ModelServer, channel: grpc.Channel, name: str, expected: dict[int, int]
) -> None:
    """Wait on the manager's state changes until ``name`` has ``expected``, then check that
    GetModelStatus over gRPC says the same (the wait's predicate runs under the manager's
    lock, so it reads the manager, not the RPC)."""
    manager = server.core.manager
    want = {v: _STATE_NAMES[s] for v, s in expected.items()}

    def reached() -> bool:
        try:
            return {s.version: s.state for s in manager.status(name)} == want
        except Exception:
            return False

    assert manager.wait_for(reached, WAIT), manager.status(name)
    assert _states(channel, name) == expected


@pytest.fixture
def start_server() -> Iterator[Callable[..., ModelServer]]:
    started: list[ModelServer] = []

    def start(**options: object) -> ModelServer:
        options.setdefault("port", -1)
        options.setdefault("rest_api_port", 0)
        server = ModelServer(ServerOptions(**options)).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(1.0)


@pytest.fixture
def manager_log(capture_log: Callable[[str, int, float], LogRecords]) -> LogRecords:
    return capture_log("tfsuite.server.model_manager", logging.DEBUG, WAIT)


# -- case 3: availability preserving ------------------------------------------------------------


def test_half_cut_new_version_never_takes_latest_dark(
    tmp_path: Path, model_dirs: dict[str, Path], add_version, start_server
) -> None:
    base = tmp_path / "m"
    add_version(base, 6, "half_plus_two")
    server = start_server(
        model_name="m",
        model_base_path=str(base),
        max_num_load_retries=0,
        file_system_poll_wait_seconds=1,
    )
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        _Load(server.grpc_port) as load,
    ):
        load.more(20)
        publish_half_cut(base, 7, model_dirs["half_plus_three"])
        _wait_states(server, channel, "m", {6: AVAILABLE, 7: END})
        error = _statuses(channel, "m")[7].status
        assert error.error_code != 0 and "saved_model.pb" in error.error_message
        # More polls see the failed version 7 again; version 6 must stay.
        server.core.manager.poll_now()
        server.core.manager.poll_now()
        load.more(200)
        assert _states(channel, "m") == {6: AVAILABLE, 7: END}
        assert set(load.served) == {6}
        # Fixed and published again: 7 loads, and only then 6 goes.
        shutil.rmtree(base / "7")
        server.core.manager.poll_now()
        add_version(base, 7, "half_plus_three")
        load.until(lambda served: 7 in served)
        _wait_states(server, channel, "m", {6: END, 7: AVAILABLE})
        load.more(50)
    assert load.failures == []  # not one request on Latest failed
    assert load.served[-1] == 7


def test_old_version_is_unloaded_only_after_the_new_one_is_available(
    tmp_path: Path, add_version, start_server
) -> None:
    base = tmp_path / "m"
    add_version(base, 6, "half_plus_two")
    server = start_server(
        model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=1
    )
    seen: list[dict[int, str]] = []
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        _Load(server.grpc_port) as load,
    ):
        manager = server.core.manager

        def record() -> bool:  # runs on every state change, under the manager's lock
            states = {s.version: s.state for s in manager.status("m")}
            if not seen or seen[-1] != states:
                seen.append(states)
            return states == {6: "END", 7: "AVAILABLE"}

        add_version(base, 7, "half_plus_three")
        assert manager.wait_for(record, WAIT)
        assert _states(channel, "m") == {6: END, 7: AVAILABLE}
        load.more(20)
    assert load.failures == []
    # Never a moment with 6 on its way out and 7 not yet serving.
    for states in seen:
        if states.get(6) in ("UNLOADING", "END"):
            assert states.get(7) == "AVAILABLE", seen


# -- case 4: retries block nothing ---------------------------------------------------------------


def _config_text(models: dict[str, tuple[Path, str]]) -> str:
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra} }} '
        for name, (base, extra) in models.items()
    )
    return f"model_config_list {{ {entries}}}"


def test_a_retrying_load_blocks_neither_reload_config_nor_the_config_poll(
    tmp_path: Path, model_dirs: dict[str, Path], add_version, start_server, manager_log
) -> None:
    a = tmp_path / "a"
    add_version(a, 1, "half_plus_two")
    b = tmp_path / "b"
    add_version(b, 1, "half_plus_three")
    c = tmp_path / "c"
    add_version(c, 1, "half_plus_two")
    config = tmp_path / "models.config"
    config.write_text(_config_text({"a": (a, "")}))
    server = start_server(
        model_config_file=str(config),
        model_config_file_poll_wait_seconds=1,
        file_system_poll_wait_seconds=1,
        max_num_load_retries=5,
        load_retry_interval_micros=600_000_000,  # 10 minutes between attempts
    )
    publish_half_cut(a, 2, model_dirs["half_plus_three"])
    manager_log.wait_for("retrying 5 more time(s)")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        assert _states(channel, "a") == {1: AVAILABLE, 2: LOADING}  # waiting to retry
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(_config_text({"a": (a, ""), "b": (b, "")}), request.config)
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            request, timeout=30
        )
        assert _states(channel, "b") == {1: AVAILABLE}
        assert _states(channel, "a") == {1: AVAILABLE, 2: LOADING}  # still in its retry wait

        config.write_text(_config_text({"a": (a, ""), "b": (b, ""), "c": (c, "")}))
        manager_log.wait_for("model config file")  # the poll picked the change up
        assert server.core.manager.wait_for(lambda: "c" in server.core.manager.model_names(), WAIT)
        _wait_states(server, channel, "c", {1: AVAILABLE})
        assert _states(channel, "a") == {1: AVAILABLE, 2: LOADING}
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            _predict("c"), timeout=30
        )
        assert make_ndarray(response.outputs["y"]).tolist() == [3.0]


# -- case 5: all or nothing ------------------------------------------------------------------------


SPECIFIC_1_2 = (
    "model_version_policy { specific { versions: 1 versions: 2 } } "
    'version_labels { key: "stable" value: 2 }'
)


def _reload(channel: grpc.Channel, text: str) -> None:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)


def _by_label(channel: grpc.Channel, label: str) -> tuple[int, float]:
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        _predict(label=label), timeout=30
    )
    return response.model_spec.version.value, float(make_ndarray(response.outputs["y"])[0])


def test_dropping_a_labelled_version_is_refused_whole_and_nothing_changes(
    tmp_path: Path, add_version, start_server, manager_log
) -> None:
    base = tmp_path / "m"
    add_version(base, 1, "half_plus_two")
    add_version(base, 2, "half_plus_three")
    config = tmp_path / "models.config"
    config.write_text(_config_text({"m": (base, SPECIFIC_1_2)}))
    server = start_server(
        model_config_file=str(config),
        model_config_file_poll_wait_seconds=1,
        file_system_poll_wait_seconds=0,
    )
    drop_2 = _config_text(
        {
            "m": (
                base,
                (
                    "model_version_policy { specific { versions: 1 } } "
                    'version_labels { key: "stable" value: 2 }'
                ),
            )
        }
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        assert _by_label(channel, "stable") == (2, 4.0)
        with pytest.raises(grpc.RpcError) as err:
            _reload(channel, drop_2)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version 2 of model m" in err.value.details()
        assert _states(channel, "m") == {1: AVAILABLE, 2: AVAILABLE}
        assert _by_label(channel, "stable") == (2, 4.0)

        # The same change through the config file: refused whole, one log line however many
        # polls retry it.
        config.write_text(drop_2)
        manager_log.wait_for("changed: applying it", count=3)
        not_applied = manager_log.matching("not applied", logging.ERROR)
        assert len(not_applied) == 1, not_applied
        assert "previous config stays in force" in not_applied[0]
        assert _states(channel, "m") == {1: AVAILABLE, 2: AVAILABLE}
        assert _by_label(channel, "stable") == (2, 4.0)


def test_a_label_on_a_version_that_fails_to_load_rolls_the_whole_config_back(
    tmp_path: Path, model_dirs: dict[str, Path], add_version, start_server, manager_log
) -> None:
    base = tmp_path / "m"
    add_version(base, 1, "half_plus_two")
    add_version(base, 2, "half_plus_three")
    publish_half_cut(base, 3, model_dirs["half_plus_three"])
    other = tmp_path / "b"
    add_version(other, 1, "half_plus_two")
    config = tmp_path / "models.config"
    config.write_text(_config_text({"m": (base, SPECIFIC_1_2)}))
    server = start_server(
        model_config_file=str(config), file_system_poll_wait_seconds=0, max_num_load_retries=0
    )
    change = _config_text(
        {
            "m": (
                base,
                (
                    "model_version_policy { specific { versions: 1 versions: 2 versions: 3 } } "
                    'version_labels { key: "stable" value: 3 }'
                ),
            ),
            "b": (other, ""),
        }
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            _reload(channel, change)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version 3 of model m" in err.value.details()
        # None of it applied: no model b, the label where it was, versions 1 and 2 serving.
        with pytest.raises(grpc.RpcError) as missing:
            _statuses(channel, "b")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert _by_label(channel, "stable") == (2, 4.0)
        states = _statuses(channel, "m")
        assert (states[1].state, states[2].state) == (AVAILABLE, AVAILABLE)
        # Version 3 stays END with its load error: why the change failed.
        assert states[3].state == END and "saved_model.pb" in states[3].status.error_message
        # Trying the same change again fails the same way, without loading 3 again.
        with pytest.raises(grpc.RpcError) as again:
            _reload(channel, change)
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _by_label(channel, "stable") == (2, 4.0)
        assert len(manager_log.matching("Loading servable version {name: m version: 3}")) == 1
