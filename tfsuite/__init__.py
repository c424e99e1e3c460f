"""tfsuite: export optimized variants of a TensorFlow model, serve them side by side with
TensorFlow Serving (or the embedded, API-compatible server), load-test and compare them."""

from __future__ import annotations

from tfsuite.errors import TFSuiteError, UsageError

__version__ = "0.1.0"
__all__ = ["TFSuiteError", "UsageError", "__version__"]
