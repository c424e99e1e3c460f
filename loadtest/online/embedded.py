"""``tfsuite compare --base-path``: the embedded server in its own process, for one run.

The server is ``python -m tfsuite serve`` with TF Serving's flags (ephemeral gRPC and REST
ports on 127.0.0.1, Prometheus on, batching when a BatchingParameters file is given), so
the load generator never shares its process, its GIL or TensorFlow with the server it
measures. The config files are written by :mod:`tfsuite.serving_configs` into a temp dir.

Its log is read as it runs: the start-up lines give the ports (``Running gRPC ModelServer
at HOST:PORT ...``, ``Exporting HTTP/REST API at:HOST:PORT ...``), and the load lines
(``Loading servable version {name: M version: N}`` ... ``Successfully loaded servable
version {name: M version: N} in S s``) give each version's load time; the server's RSS is
sampled at those two lines, which gives each version's memory cost (versions load one at
a time).
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

from tfsuite.errors import TFSuiteError, UsageError

__all__ = ["EmbeddedServer", "VersionLoad"]

START_TIMEOUT_S = 300.0
_GRPC = re.compile(r"Running gRPC ModelServer at (?P<host>[\w.:]+):(?P<port>\d+) \.\.\.")
_REST = re.compile(r"Exporting HTTP/REST API at:(?P<host>[\w.:]+):(?P<port>\d+) \.\.\.")
_LOADING = re.compile(r"Loading servable version \{name: (?P<name>\S+) version: (?P<v>\d+)\}")
_LOADED = re.compile(
    r"Successfully loaded servable version \{name: (?P<name>\S+) version: (?P<v>\d+)\} "
    r"in (?P<s>[\d.]+) s"
)
#: The server's own log lines kept (for the error message when it dies).
TAIL_LINES = 40


@dataclass
class VersionLoad:
    """One version's load, as the server logged it."""

    seconds: float | None = None
    rss_before: int | None = None
    rss_after: int | None = None

    @property
    def rss_delta(self) -> int | None:
        if self.rss_before is None or self.rss_after is None:
            return None
        return self.rss_after - self.rss_before


@dataclass
class EmbeddedServer:
    """A ``tfsuite serve`` process for one model base path (use as a context manager)."""

    base_path: Path
    model: str
    batching_parameters: Path | None = None
    loads: dict[int, VersionLoad] = field(default_factory=dict)
    grpc_address: str = ""
    rest_address: str = ""
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _tail: list[str] = field(default_factory=list, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def metrics_url(self) -> str:
        from tfsuite.serving_configs.monitoring import DEFAULT_METRICS_PATH

        return f"http://{self.rest_address}{DEFAULT_METRICS_PATH}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _flags(self, work: Path) -> list[str]:
        from tfsuite.serving_configs.errors import ConfigError
        from tfsuite.serving_configs.model_config import (
            model_config_for,
            model_server_config,
            write_model_config,
        )
        from tfsuite.serving_configs.monitoring import write_monitoring_config

        if not self.base_path.is_dir():
            raise UsageError(f"--base-path {self.base_path}: no such directory")
        try:  # every loadable version, labelled with its variant name (variants.json)
            config = model_server_config([model_config_for(self.model, self.base_path)])
        except ConfigError as exc:
            raise UsageError(f"--base-path {self.base_path}: {exc}") from None
        models = write_model_config(work / "models.config", config)
        monitoring = write_monitoring_config(work / "monitoring.config")
        flags = [
            "--port=-1",
            "--rest_api_port=-1",
            f"--model_config_file={models}",
            f"--monitoring_config_file={monitoring}",
            "--file_system_poll_wait_seconds=0",
        ]
        if self.batching_parameters is not None:
            flags += ["--enable_batching", f"--batching_parameters_file={self.batching_parameters}"]
        return flags

    def start(self) -> EmbeddedServer:
        if self.batching_parameters is not None and not self.batching_parameters.is_file():
            raise UsageError(f"--batching-parameters {self.batching_parameters}: no such file")
        self._tmp = tempfile.TemporaryDirectory(prefix="tfsuite-compare-")
        flags = self._flags(Path(self._tmp.name))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "400"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tfsuite", "serve", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.grpc_address and self.rest_address):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise TFSuiteError(f"the embedded server did not start in {START_TIMEOUT_S:g}s")
            if not line:
                tail = " | ".join(t.strip() for t in self._tail[-5:])
                self.stop()
                raise TFSuiteError(f"the embedded server exited during start-up: {tail}")
            if m := _GRPC.search(line):
                self.grpc_address = f"127.0.0.1:{m['port']}"
            if m := _REST.search(line):
                self.rest_address = f"127.0.0.1:{m['port']}"
        return self

    def _rss(self) -> int | None:
        try:
            return int(psutil.Process(self._proc.pid).memory_info().rss) if self._proc else None
        except psutil.Error:
            return None

    def _pump(self, lines: queue.Queue[str]) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._tail = (self._tail + [line])[-TAIL_LINES:]
            if (m := _LOADING.search(line)) and m["name"] == self.model:
                self.loads.setdefault(int(m["v"]), VersionLoad()).rss_before = self._rss()
            elif (m := _LOADED.search(line)) and m["name"] == self.model:
                load = self.loads.setdefault(int(m["v"]), VersionLoad())
                load.seconds = float(m["s"])
                load.rss_after = self._rss()
            lines.put(line)
        lines.put("")

    def kill(self) -> None:
        """Kill the server at once (tests: a server dying mid-run)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
