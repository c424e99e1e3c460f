"""Errors raised by the exporter.

TFSuiteError
└── ExportError              a variant could not be built or published
    └── ExportUsageError     the user's input is wrong (also a ``UsageError``): bad path,
                             unknown name, base path that cannot be written as asked
"""

from __future__ import annotations

from tfsuite.errors import TFSuiteError, UsageError

__all__ = ["ExportError", "ExportUsageError"]


class ExportError(TFSuiteError):
    """Exporting failed for a reason the message explains."""


class ExportUsageError(ExportError, UsageError):
    """The source, names or options given to the exporter cannot be used as asked."""

    exit_code = 2
