"""The compose files' ``tensorflow_model_server`` command lines are accepted by ``tfsuite serve``.

So the embedded server is a drop-in for them: every ``- --flag=value`` of a ``command:`` list
in ``compose/tfserving-*.yml`` goes through the same parser ``tfsuite serve`` uses.
PyYAML is not a dependency, so the lists are read line by line (they are plain block
sequences of ``- --flag=value`` items); ``${VAR:-default}`` is expanded to its default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tfsuite.server.flags import FLAGS, parse_flags

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
FILES = ["tfserving-cpu.yml", "tfserving-gpu.yml"]
_VAR = re.compile(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}")


def command_flags(text: str) -> list[str]:
    """The items of every ``command:`` block sequence, ``${VAR:-default}`` expanded."""
    flags: list[str] = []
    in_command = False
    indent = -1
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip())
        if stripped == "command:":
            in_command, indent = True, depth
            continue
        if in_command and depth >= indent and stripped.startswith("- "):
            item = stripped[2:].strip().strip("\"'")
            flags.append(_VAR.sub(lambda m: m["default"] or "", item))
            continue
        in_command = False
    return flags


def test_reader_reads_block_lists_and_defaults() -> None:
    text = (
        "services:\n  a:\n    command:\n      - --port=8500\n"
        '      - "--enable_batching=${ENABLE_BATCHING:-true}"\n'
        "    healthcheck:\n      test: [x]\n"
    )
    assert command_flags(text) == ["--port=8500", "--enable_batching=true"]


@pytest.mark.parametrize("name", FILES)
def test_compose_command_lines_parse_as_tfsuite_serve_flags(name: str) -> None:
    flags = command_flags((COMPOSE / name).read_text())
    assert flags, f"{name}: no command: list found"
    assert all(f.startswith("--") for f in flags), flags
    # Every flag is one tfsuite serve knows by name (no suggestion-based luck) ...
    names = {f[2:].partition("=")[0] for f in flags}
    assert names <= set(FLAGS), names - set(FLAGS)
    # ... and the whole command line passes the parser and its start-up checks.
    options = parse_flags(flags)
    assert options.port == 8500 and options.rest_api_port == 8501
    assert options.model_config_file == "/models/models.config"
    assert options.enable_batching
    assert options.batching_parameters_file == "/models/batching_parameters.txt"
    assert options.monitoring_config_file == "/models/monitoring.config"
