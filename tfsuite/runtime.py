"""Importing TensorFlow without its start-up chatter.

TensorFlow 2.21 logs from C++ before absl's logging is initialised (oneDNN notice, CUDA
stubs, ``cuInit`` failures on machines without a GPU), and ``TF_CPP_MIN_LOG_LEVEL`` does not
reach those lines. They would bury the suite's own output, so the CLI imports TensorFlow
(and lets it probe devices) with file descriptor 2 pointed at a temporary file. If the
import fails, what TensorFlow wrote is replayed to the real stderr before the error.
"""

from __future__ import annotations

import os
import sys
import tempfile

__all__ = ["import_tensorflow_quietly"]


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once, hiding what its C++ runtime prints while it starts."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules and hasattr(sys.modules["tensorflow"], "config"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too; get it over with here
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
