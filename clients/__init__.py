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

from tfsuite.lazy_exports import lazy_exports

# Public name -> defining module. Resolved on first use (PEP 562) so that importing
# ``tfsuite.clients.codec`` (as the server does) does not pull in httpx and the clients.
_EXPORTS: dict[str, str] = {
    "AsyncRestClient": "rest_client",
    "AsyncTFServingClient": "grpc_client",
    "CallEvent": "hooks",
    "ChannelOptions": "grpc_client",
    "MessageTooLargeError": "errors",
    "ModelMetadata": "specs",
    "RestClient": "rest_client",
    "ServerUnreachableError": "errors",
    "ServingClientError": "errors",
    "SignatureSpec": "specs",
    "TFServingClient": "grpc_client",
    "TLSConfig": "grpc_client",
    "TensorSpec": "specs",
    "VersionStatus": "specs",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
