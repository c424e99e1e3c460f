"""The suite's exception hierarchy.

    TFSuiteError               base: a message a user can act on; CLIs print it in one line
    ├── UsageError             bad input from the user (paths, names, options)
    └── (per package)          e.g. tfsuite.export.errors.ExportError,
                               tfsuite.server.errors.ServingError (carries a gRPC status code)

CLIs never show a traceback for a ``TFSuiteError``, nor for an ``OSError`` naming a file (a
path the user gave that cannot be used); anything else is a bug and is shown in full.
"""

from __future__ import annotations

__all__ = ["TFSuiteError", "UsageError"]


class TFSuiteError(Exception):
    """Base class of every error the suite raises on purpose.

    ``str(err)`` is one line that says what is wrong and what to do about it.
    """

    exit_code: int = 1


class UsageError(TFSuiteError):
    """The user asked for something that cannot be done as asked (bad path, name or option)."""

    exit_code = 2
