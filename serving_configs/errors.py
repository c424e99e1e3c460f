"""Errors of ``tfsuite.serving_configs``.

TFSuiteError
└── ConfigError   a config file or value TF Serving would reject (in TF Serving's wording)
"""

from __future__ import annotations

from tfsuite.errors import TFSuiteError

__all__ = ["ConfigError"]


class ConfigError(TFSuiteError):
    """A TF Serving config file or value is invalid; the message says which and why, in one line."""

    exit_code = 2
