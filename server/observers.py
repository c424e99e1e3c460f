"""The request hook both protocol adapters call after every request.

``ModelServer.request_observers`` is the extension point (benchmarks, request logs); the
Prometheus metrics are recorded by the core itself, so nothing here is needed for them.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

__all__ = ["RequestObserver"]

#: ``(entrypoint "GRPC" | "REST", api, model_name, status code, seconds in the handler)``.
RequestObserver = Callable[[str, str, str, grpc.StatusCode, float], None]
