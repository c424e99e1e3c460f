"""tfsuite's locustfile: load TF Serving model versions side by side.

    locust -f loadtest/locustfile.py --headless -u 16 -r 16 -t 20s \\
        --host 127.0.0.1:8500 --tfs-model mobilenet_v2 --tfs-versions 1,2 --csv out/run

(from an install: ``tfsuite locust ...``, which finds this file as
``tfsuite.loadtest.locustfile``; Locust's ``-f`` takes files, not module names).

Users: :class:`TFServingGrpcUser` (default) and :class:`TFServingRestUser` (``--tfs-rest``).
Shape: :class:`TFServingShape` (``--tfs-steps``, ``--tfs-rates``, ``--tfs-sequential``).
One Locust row per version, ``Predict <model> v<version> <variant>``; microsecond HDR
histograms per row, merged across workers; at the end ``hdr_<entry>.json``,
``percentiles.csv``, ``server_deltas.json`` and ``results.json`` next to the ``--csv`` files.
The options are ``--tfs-*`` (``locust -f loadtest/locustfile.py --help``).
"""

from __future__ import annotations

# gRPC under gevent: only here, in the Locust entry, before any channel exists.
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

from locust import events

from tfsuite.loadtest.swarm.session import SESSION
from tfsuite.loadtest.swarm.shape import TFServingShape
from tfsuite.loadtest.swarm.users import TFServingGrpcUser, TFServingRestUser

__all__ = ["TFServingGrpcUser", "TFServingRestUser", "TFServingShape"]

if not SESSION.user_classes:  # once per process, however many names this file is loaded as
    SESSION.user_classes = {"grpc": TFServingGrpcUser, "rest": TFServingRestUser}
    SESSION.install(events)
