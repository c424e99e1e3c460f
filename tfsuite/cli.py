"""The ``tfsuite`` command line: one click group whose subcommands live in their packages.

Subcommands are imported lazily so that ``tfsuite --help`` and light commands do not pay
for importing TensorFlow.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from tfsuite.errors import TFSuiteError
from tfsuite.runtime import import_tensorflow_quietly

__all__ = ["COMMANDS", "TENSORFLOW_COMMANDS", "cli", "export_variants_main", "main", "run"]

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "demo": "tfsuite.demo:demo",
    "examples": "tfsuite.export.examples:examples",
    "export": "tfsuite.export.cli:export",
    "inspect": "tfsuite.export.cli:inspect",
    "freeze": "tfsuite.export.cli:freeze",
    "serve": "tfsuite.server.cli:serve",
    "detect": "tfsuite.clients.cli:detect",
    "classify": "tfsuite.clients.cli:classify",
    "bench": "tfsuite.loadtest.offline.cli:bench",
    "compare": "tfsuite.loadtest.online.cli:compare",
    "locust": "tfsuite.loadtest.swarm.cli:locust",
    "configs": "tfsuite.serving_configs.cli:configs",
    "up": "tfsuite.deploy.cli:up",
    "down": "tfsuite.deploy.cli:down",
    "status": "tfsuite.deploy.cli:status",
    "report": "tfsuite.loadtest.report.cli:report",
}

#: Subcommands that run TensorFlow (clients and config writers stay light).
TENSORFLOW_COMMANDS = frozenset(
    {"demo", "examples", "export", "inspect", "freeze", "serve", "bench"}
)

HELP: dict[str, str] = {
    "demo": "Run the whole job end to end on the embedded server with the bundled example models.",
    "examples": "Write the bundled example models (detector, classifier).",
    "export": "Turn one model into versioned, validated variants under a model base path.",
    "inspect": "Show signatures, ops and size of a SavedModel or frozen graph.",
    "freeze": "Freeze a SavedModel signature into a frozen GraphDef (.pb).",
    "serve": "Serve models with the embedded TF-Serving-compatible server.",
    "detect": "Send images to a detection model on TF Serving; print/draw/write COCO JSON.",
    "classify": "Send images to a classification model on TF Serving; print top-k.",
    "bench": "Offline benchmark matrix: variants x batch sizes x backends.",
    "compare": "Load-test a model's versions side by side (closed/open loop); results.json.",
    "locust": "Locust load run on TF Serving: per-version rows, µs histograms, results.json.",
    "configs": "Write TF Serving config files (models.config, batching, monitoring) for base paths.",
    "up": "Serve a config dir in Docker containers (TF Serving or the suite image); wait until ready.",
    "down": "Remove the containers and network `tfsuite up` started.",
    "status": "List running tfsuite containers with model/version states.",
    "report": "Render results.json file(s) into report.html + report.md (merges several runs).",
}


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter hides the suite's own output; keep errors only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if name in TENSORFLOW_COMMANDS and not any(a in ("-h", "--help") for a in sys.argv[2:3]):
            import_tensorflow_quietly()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("tfsuite"):
                return _unavailable(name, f"not built yet ({exc.name} is missing)")
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text without importing every subcommand module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP.get(name, "")) for name in self.list_commands(ctx)])


def _unavailable(name: str, why: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise TFSuiteError(f"`tfsuite {name}` is {why}.")

    return command


def log_level(verbose: int) -> int:
    """Root log level for ``-v`` count: INFO by default (TF Serving's start-up and load lines
    are INFO), DEBUG with ``-v``."""
    return logging.DEBUG if verbose else logging.INFO


def log_handler() -> logging.Handler:
    """Log records go to stderr (as TF Serving's do): stdout is for results, e.g. ``--json``."""
    from rich.console import Console
    from rich.logging import RichHandler

    return RichHandler(
        console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
    )


def setup_logging(verbose: int) -> None:
    level = log_level(verbose)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[log_handler()])
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More log output: -v adds debug lines (default: info)."
)
@click.version_option(package_name="tfsuite")
def cli(verbose: int) -> None:
    """tfsuite: export, serve, load-test and compare optimized variants of a TensorFlow model."""
    setup_logging(verbose)


def run(command: click.Command, args: list[str] | None = None, prog_name: str | None = None) -> Any:
    """Run a click command; a ``TFSuiteError`` becomes one line on stderr and a non-zero exit."""
    quiet_tensorflow()
    try:
        with _sigterm_as_interrupt():
            return command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except TFSuiteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt (Ctrl-C, SIGTERM)
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # click's own option errors, in the suite's one-line form (no usage block).
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        # An OSError naming a file is a path the user gave that cannot be used (a file where a
        # directory is needed, no permission, disk full): one line, like a UsageError. One
        # without a file name (sockets, bugs) still shows its traceback.
        if exc.filename is None:
            raise
        click.echo(f"error: {_os_error_message(exc)}", err=True)
        sys.exit(2)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``docker stop``, CI timeouts) unwinds like Ctrl-C, so every command's
    clean-up runs: temp dirs removed, finished rows written. ``tfsuite serve`` installs its
    own handler (drain, then exit 0) while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _os_error_message(exc: OSError) -> str:
    path = repr(os.fsdecode(exc.filename))
    if exc.filename2 is not None:
        path += f" -> {os.fsdecode(exc.filename2)!r}"
    reason = exc.strerror or type(exc).__name__
    return f"cannot use {path}: {reason}; check the path (and its parent directories)"


def main(args: list[str] | None = None) -> None:
    result = run(cli, args, prog_name="tfsuite")
    if isinstance(result, int):
        sys.exit(result)


def export_variants_main(args: list[str] | None = None) -> None:
    """``export-variants``: the same as ``tfsuite export``."""
    setup_logging(0)
    command = LazyGroup().get_command(click.Context(cli), "export")
    assert command is not None
    # -h as well as --help, as every `tfsuite` subcommand has (it inherits them from the group).
    command.context_settings = {**command.context_settings, "help_option_names": ["-h", "--help"]}
    run(command, args, prog_name="export-variants")
