"""``tensorflow_model_server`` command-line flags -> ``ServerOptions``.

TF Serving parses its flags with TensorFlow's flag parser: ``--name=value``, booleans also
bare (``--enable_batching``) or ``--name=true|false``. Scripts written for it also use
``--name value``, so both forms are accepted here. The flag set is ``ServerOptions`` itself
(one field per flag, named like the flag); flags listed in ``IGNORED_FLAGS`` are accepted
and logged as ignored when set.

Port scheme (the only place this server extends TF Serving's port meanings):

- ``--port=N`` / ``--rest_api_port=N`` bind port N (``--host``, default 127.0.0.1).
- ``--rest_api_port=0`` turns REST off and ``--port=0`` turns TCP gRPC off, as in TF
  Serving (then ``--grpc_socket_path`` must be set, or there is no gRPC at all).
- ``-1`` on either port binds a free ephemeral port (tfsuite extension, for tests and
  benchmarks); the bound ports are printed in TF Serving's start-up lines
  ``Running gRPC ModelServer at HOST:PORT ...`` / ``Exporting HTTP/REST API at:HOST:PORT ...``.
"""

from __future__ import annotations

import difflib
import logging
import typing
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from tfsuite.errors import UsageError
from tfsuite.server.options import IGNORED_FLAGS, ServerOptions

__all__ = [
    "COMMAND_FLAGS",
    "EPHEMERAL_PORT",
    "FLAGS",
    "FlagSpec",
    "flags_help",
    "parse_flags",
    "validate_options",
    "version_lines",
    "version_requested",
]

logger = logging.getLogger(__name__)

#: Port value that asks for a free ephemeral port (tfsuite extension; 0 keeps TF Serving's "off").
EPHEMERAL_PORT = -1

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


@dataclass(frozen=True)
class FlagSpec:
    """One accepted flag."""

    name: str
    #: Python type of the value: bool, int, float or str.
    type: type
    #: Help text (the ServerOptions field description).
    help: str
    #: Accepted for compatibility, value not used.
    ignored: bool


def _spec_table() -> dict[str, FlagSpec]:
    table: dict[str, FlagSpec] = {}
    for name, field in ServerOptions.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is not None:  # e.g. ``str | None``: take the non-None arm
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if annotation not in (bool, int, float, str):
            raise TypeError(f"ServerOptions.{name}: flag type {annotation!r} is not supported")
        table[name] = FlagSpec(name, annotation, field.description or "", name in IGNORED_FLAGS)
    return table


#: Every accepted flag by name (the ``ServerOptions`` fields).
FLAGS: dict[str, FlagSpec] = _spec_table()

#: Flags that act on the command line itself rather than configure the server.
COMMAND_FLAGS: dict[str, FlagSpec] = {
    "version": FlagSpec(
        "version", bool, "Print the server and TensorFlow versions and exit (as TF Serving).", False
    ),
}


def _convert(spec: FlagSpec, raw: str) -> bool | int | float | str:
    if spec.type is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UsageError(f"--{spec.name} takes true or false, not {raw!r}")
    if spec.type is int:
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise UsageError(f"--{spec.name} takes an integer, not {raw!r}") from None
    if spec.type is float:
        try:
            return float(raw.strip())
        except ValueError:
            raise UsageError(f"--{spec.name} takes a number, not {raw!r}") from None
    return raw


def _unknown(name: str) -> UsageError:
    close = difflib.get_close_matches(name, [*FLAGS, *COMMAND_FLAGS], n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""
    return UsageError(f"unknown flag --{name}{hint}; `tfsuite serve --help` lists the flags")


def _tokenise(argv: Sequence[str]) -> dict[str, bool | int | float | str]:
    """``--name=value`` / ``--name value`` / bare booleans / ``--noname`` -> typed values."""
    known = {**FLAGS, **COMMAND_FLAGS}
    values: dict[str, bool | int | float | str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise UsageError(
                f"unexpected argument {arg!r}: flags are --name=value (e.g. --model_base_path=/models/m)"
            )
        body = arg.lstrip("-")
        name, eq, raw = body.partition("=")
        spec = known.get(name)
        if spec is None:
            # TF's parser also accepts --noflag for booleans.
            if (
                not eq
                and name.startswith("no")
                and name[2:] in known
                and known[name[2:]].type is bool
            ):
                values[name[2:]] = False
                continue
            raise _unknown(name)
        if not eq:
            if spec.type is bool:
                values[name] = True
                continue
            if i >= len(args):
                raise UsageError(f"--{name} needs a value (--{name}=VALUE)")
            raw = args[i]
            i += 1
        values[name] = _convert(spec, raw)
    return values


def version_requested(argv: Sequence[str]) -> bool:
    """True when ``--version`` is set: TF Serving prints its version and exits before it
    checks any other flag value (unknown flags are still an error)."""
    return bool(_tokenise(argv).get("version", False))


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    """Parse ``tensorflow_model_server``-style arguments into validated ``ServerOptions``.

    Raises ``UsageError`` (one line) for unknown flags, missing or malformed values and
    invalid combinations. ``--version`` is accepted and not part of the options
    (see ``version_requested``).
    """
    values = _tokenise(argv)
    for name in COMMAND_FLAGS:
        values.pop(name, None)
    for name in sorted(values):
        if FLAGS[name].ignored:
            logger.warning(
                "Flag --%s=%s is accepted for compatibility and ignored", name, values[name]
            )
    try:
        options = ServerOptions(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise UsageError(f"--{loc}: {first.get('msg', 'invalid value')}") from None
    validate_options(options)
    return options


def version_lines() -> list[str]:
    """What ``--version`` prints: TF Serving's two lines, naming this server and the TF it runs.

    Read from package metadata, so ``--version`` does not import TensorFlow.
    """
    from importlib.metadata import PackageNotFoundError, version

    def _version(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "unknown"

    return [
        (
            f"TensorFlow ModelServer: tfsuite-{_version('tfsuite')} (embedded; "
            f"tensorflow-serving-api {_version('tensorflow-serving-api')})"
        ),
        f"TensorFlow Library: {_version('tensorflow')}",
    ]


def validate_options(options: ServerOptions) -> None:
    """Reject combinations TF Serving rejects at start (and this server's port rules)."""
    if options.batching_parameters_file and not options.enable_batching:
        # main.cc: "--batching_parameters_file must be used with --enable_batching"
        raise UsageError(
            "--batching_parameters_file is set without --enable_batching; add --enable_batching"
        )
    if not options.model_config_file and not options.model_base_path:
        raise UsageError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
            " Pass --model_base_path=/path/to/model (with --model_name) or --model_config_file"
        )
    for flag in ("port", "rest_api_port"):
        value = getattr(options, flag)
        if value < EPHEMERAL_PORT or value > 65535:
            raise UsageError(
                f"--{flag}={value} is not a port (0-65535, or -1 for an ephemeral port)"
            )
    if options.port == 0 and not options.grpc_socket_path:
        raise UsageError(
            "--port=0 turns gRPC over TCP off and no --grpc_socket_path is set; "
            "use --port=-1 for an ephemeral port"
        )
    if options.rest_api_port > 0 and options.rest_api_port == options.port:
        raise UsageError(
            f"--rest_api_port={options.rest_api_port} must differ from --port={options.port}"
        )
    if options.grpc_max_threads < 1:
        raise UsageError(f"--grpc_max_threads={options.grpc_max_threads} must be at least 1")
    if options.rest_api_timeout_in_ms < 0:
        raise UsageError("--rest_api_timeout_in_ms must not be negative")
    for flag in ("rest_header_timeout_seconds", "rest_body_timeout_seconds"):
        if getattr(options, flag) < 0:
            raise UsageError(f"--{flag} must not be negative (0 turns the limit off)")
    if options.max_decoded_tensor_bytes < 1:
        raise UsageError("--max_decoded_tensor_bytes must be positive")


def flags_help() -> list[tuple[str, str]]:
    """``(--name=TYPE, help)`` rows for the command help, ignored flags last."""
    names = {bool: "BOOL", int: "INT", float: "FLOAT", str: "STR"}
    rows = [(f"--{s.name}={names[s.type]}", s.help) for s in FLAGS.values() if not s.ignored]
    rows += [(f"--{s.name}", s.help) for s in COMMAND_FLAGS.values()]
    ignored = ", ".join(s.name for s in FLAGS.values() if s.ignored)
    rows.append(("(ignored)", f"accepted and logged as ignored: {ignored}"))
    return rows
