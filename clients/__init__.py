"""tfsuite.clients: talk to TF Serving (or the embedded server) over gRPC or REST.

    from tfsuite.clients import TFServingClient

    with TFServingClient("127.0.0.1:8500", model="ssd_mobilenet_v2_tiny") as client:
        outputs = client.predict({"image_tensor": batch}, label="weight_quant")
        client.metadata().signature().outputs       # typed TensorSpecs
        client.status()                             # [VersionStatus(version=1, ...)]

``AsyncTFServingClient`` has the same methods (awaitable), ``RestClient`` /
``AsyncRestClient`` the same ``predict`` / ``metadata`` / ``status``. Every failed call
raises :class:`ServingClientError` (``.code`` is the gRPC status, ``.message`` TF Serving's
text). The codec (:mod:`tfsuite.clients.codec`) does not import TensorFlow.
"""

from __future__ import annotations

from tfsuite.clients.errors import MessageTooLargeError, ServerUnreachableError, ServingClientError
from tfsuite.clients.grpc_client import (
    AsyncTFServingClient,
    ChannelOptions,
    TFServingClient,
    TLSConfig,
)
from tfsuite.clients.rest_client import AsyncRestClient, RestClient
from tfsuite.clients.specs import ModelMetadata, SignatureSpec, TensorSpec, VersionStatus

__all__ = [
    "AsyncRestClient",
    "AsyncTFServingClient",
    "ChannelOptions",
    "MessageTooLargeError",
    "ModelMetadata",
    "RestClient",
    "ServerUnreachableError",
    "ServingClientError",
    "SignatureSpec",
    "TFServingClient",
    "TLSConfig",
    "TensorSpec",
    "VersionStatus",
]
