"""Deployments on a Docker engine: ``tfsuite up`` / ``down`` / ``status`` and the suite image.

- :mod:`~tfsuite.deploy.engine`: connecting to the engine (and starting ``dockerd`` as root);
- :mod:`~tfsuite.deploy.plan`: what a config dir asks for (mount, flags, expected versions);
- :mod:`~tfsuite.deploy.containers`: starting, waiting for and removing serving containers;
- :mod:`~tfsuite.deploy.endpoints`: ``endpoints.json``, read by the clients' ``--endpoints``;
- :mod:`~tfsuite.deploy.image`: ``make image``, the suite image built with no registry.

Only :mod:`~tfsuite.deploy.endpoints` is imported by clients; it has no Docker dependency.
"""

from __future__ import annotations

from tfsuite.deploy.endpoints import Endpoint, EndpointsFile

__all__ = ["Endpoint", "EndpointsFile"]
