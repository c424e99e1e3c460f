"""Deployment errors: each says what is wrong and what to do, in one line.

TFSuiteError
└── DeployError              a deployment cannot be started as asked
    └── EngineUnavailable    no Docker engine answers
"""

from __future__ import annotations

from tfsuite.errors import TFSuiteError

__all__ = ["DeployError", "EngineUnavailable"]


class DeployError(TFSuiteError):
    """``tfsuite up`` refused or failed; whatever it had started is removed again."""

    exit_code = 2


class EngineUnavailable(DeployError):
    """No Docker engine answered on the configured socket."""

    exit_code = 3
