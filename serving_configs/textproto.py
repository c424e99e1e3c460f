"""Reading and writing text-format protos the way TF Serving's ``ParseProtoTextFile`` does.

TF Serving reports an unparsable file in two lines: protobuf's ``Error parsing text-format
<message type>: <line>:<column>: <reason>`` and ``Invalid protobuf file: '<path>'``. We say
both in one: ``Invalid protobuf file: '<path>': Error parsing text-format ...: 3:5: ...``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import Message

from tfsuite.atomic import atomic_write_text
from tfsuite.serving_configs.errors import ConfigError

__all__ = ["parse_text_proto", "read_text_proto", "write_text_proto"]

M = TypeVar("M", bound=Message)
#: A config kind's semantic checks (beyond parsing): raise ``ConfigError`` to refuse.
Validate = Callable[[M], None]

#: Config files are small; refuse to read anything absurd into memory.
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def _validated(message: M, validate: Validate[M] | None, source: str) -> M:
    """Run the config kind's own checks; their ``ConfigError`` gets ``source:`` in front."""
    if validate is not None:
        try:
            validate(message)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return message


def parse_text_proto(
    text: str, message: M, source: str = "<text>", validate: Validate[M] | None = None
) -> M:
    """Parse ``text`` into ``message`` (cleared first); errors name ``source`` and the line.

    ``validate`` (the config kind's checks, raising ``ConfigError``) runs on the result.
    """
    message.Clear()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        reason = _one_line(str(exc))
        line, column = exc.GetLine(), exc.GetColumn()
        if line is not None:
            # Python's protobuf says "3:5 : reason"; the C++ parser TF Serving uses, "3:5: reason".
            reason = f"{line}:{column}: {reason.split(' : ', 1)[-1]}"
        raise ConfigError(
            f"Invalid protobuf file: '{source}': Error parsing text-format "
            f"{message.DESCRIPTOR.full_name}: {reason}"
        ) from None
    return _validated(message, validate, source)


def read_text_proto(
    path: str | os.PathLike[str], message: M, validate: Validate[M] | None = None
) -> M:
    """Read a text-proto file; missing/unreadable files and parse errors become ``ConfigError``."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"Invalid protobuf file: '{p}': larger than {MAX_CONFIG_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: No such file or directory") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a text-format proto file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Invalid protobuf file: '{p}': not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_text_proto(text, message, str(p), validate)


def write_text_proto(
    path: str | os.PathLike[str], message: M, validate: Validate[M] | None = None
) -> Path:
    """Validate, then write ``message`` in text format atomically (temp file, then rename)."""
    _validated(message, validate, str(path))
    return atomic_write_text(path, text_format.MessageToString(message))


def _one_line(text: str) -> str:
    return " ".join(text.split())
