"""The online measurement engine behind ``tfsuite compare``: closed and open loop load on the
asyncio gRPC client, HdrHistogram recording, stability windows, client-bound detection,
server-metrics deltas, sweeps per version."""

from __future__ import annotations

__all__: list[str] = []
