"""Errors of the offline benchmark (``tfsuite bench``).

    TFSuiteError
    └── UsageError
        └── BenchUsageError    bad bench input: assignment file, batch sizes, backends, shapes

A case that fails while running is *not* an exception to the user: it becomes a ``failed`` row
(first line of the error + the case's log path) and the matrix continues.
"""

from __future__ import annotations

from tfsuite.errors import UsageError

__all__ = ["BenchUsageError"]


class BenchUsageError(UsageError):
    """The bench was asked for something that cannot run as asked; the message says what to do."""
