"""``tfsuite locust``: Locust with the suite's locustfile, every argument passed through.

    tfsuite locust --headless -u 16 -r 16 -t 20s --host 127.0.0.1:8500 \\
        --tfs-model mobilenet_v2 --tfs-versions 1,2 --out out/
    tfsuite locust --base-path models/mobilenet_v2 --tfs-versions 1,2 --out out/   # own server

It adds only what Locust cannot do itself:

* ``-f``: the suite's locustfile unless one is given; a module name (``-f
  tfsuite.loadtest.locustfile``) is resolved to its file, since Locust's ``-f`` takes files,
  directories or URLs only;
* ``--base-path DIR``: starts the embedded server on that model base path for the run
  (``tfsuite serve`` in its own process, ephemeral ports, Prometheus on) and points
  ``--host`` and ``--tfs-metrics-url`` at it; ``--tfs-model`` defaults to the directory name;
* ``--out DIR``: ``--csv DIR/locust`` and ``--html DIR/report.html`` (unless given), so the
  HDR files, ``percentiles.csv`` and ``results.json`` land in ``DIR``.

Locust runs as a child process (it patches the process with gevent); Ctrl-C reaches it and
it writes its files before exiting. The exit code is Locust's.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from tfsuite.errors import UsageError

__all__ = ["LOCUSTFILE_MODULE", "locust", "locust_argv", "locustfile_path"]

LOCUSTFILE_MODULE = "tfsuite.loadtest.locustfile"


def locustfile_path(module: str = LOCUSTFILE_MODULE) -> str:
    """The file behind a module name (what Locust's -f needs)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise UsageError(f"-f {module}: no such file or importable module")
    return spec.origin


def _value(args: list[str], *names: str) -> str | None:
    """The value of the last ``--name VALUE`` / ``--name=VALUE`` in ``args``."""
    found = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                found = arg.split("=", 1)[1]
    return found


def _has(args: list[str], *names: str) -> bool:
    return any(a in names or any(a.startswith(n + "=") for n in names) for a in args)


def _resolve_locustfile(args: list[str]) -> list[str]:
    for i, arg in enumerate(args):
        if arg in ("-f", "--locustfile") and i + 1 < len(args):
            args[i + 1] = _file_or_module(args[i + 1])
            return args
        if arg.startswith("--locustfile="):
            args[i] = "--locustfile=" + _file_or_module(arg.split("=", 1)[1])
            return args
    return ["-f", locustfile_path(), *args]


def _file_or_module(value: str) -> str:
    parts = [p.strip() for p in value.split(",")]
    out = []
    for part in parts:
        looks_like_module = (
            not part.endswith(".py")
            and "/" not in part
            and "." in part
            and not os.path.exists(part)
        )
        out.append(locustfile_path(part) if looks_like_module else part)
    return ",".join(out)


def locust_argv(
    args: Sequence[str],
    out: Path | None = None,
    host: str | None = None,
    metrics_url: str | None = None,
    model: str | None = None,
) -> list[str]:
    """Locust's command line for ``tfsuite locust ARGS`` (pure: tested without a run)."""
    argv = _resolve_locustfile(list(args))
    if out is not None:
        if not _has(argv, "--csv"):
            argv += ["--csv", str(out / "locust")]
        if not _has(argv, "--html"):
            argv += ["--html", str(out / "report.html")]
    if host is not None and not _has(argv, "-H", "--host"):
        argv += ["--host", host]
    if metrics_url is not None and not _has(argv, "--tfs-metrics-url"):
        argv += ["--tfs-metrics-url", metrics_url]
    if model is not None and not _has(argv, "--tfs-model"):
        argv += ["--tfs-model", model]
    return argv


def _run_locust(argv: list[str]) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "locust", *argv], env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches the child too; a SIGTERM/SIGINT sent to this process
        # alone is passed on, so Locust shuts down in order (and writes its files).
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        return proc.wait()


@click.command(
    name="locust",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog="Every other argument is Locust's (`locust -f loadtest/locustfile.py --help` lists the --tfs-* options).",
)
@click.option(
    "--base-path",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Start the embedded server on this model base path for the run (own process).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write Locust's CSV/HTML, the HDR files and results.json into this directory.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def locust(base_path: Path | None, out: Path | None, args: tuple[str, ...]) -> int:
    """Run Locust with tfsuite's locustfile (TF Serving users, per-version rows, µs histograms)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if base_path is None:
        return _run_locust(locust_argv(args, out))
    from tfsuite.loadtest.online.embedded import EmbeddedServer

    model = _value(list(args), "--tfs-model") or base_path.resolve().name
    rest = _has(list(args), "--tfs-rest")
    with EmbeddedServer(base_path.resolve(), model) as server:
        host = f"http://{server.rest_address}" if rest else server.grpc_address
        click.echo(
            f"embedded server for {model}: gRPC {server.grpc_address}, REST {server.rest_address}",
            err=True,
        )
        argv = locust_argv(args, out, host, server.metrics_url, model)
        return _run_locust(argv)
