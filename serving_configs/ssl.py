"""``--ssl_config_file``: TF Serving's ``SSLConfig`` text proto (``config/ssl_config.proto``).

``tensorflow-serving-api`` does not ship this message, so it is declared at runtime in
``project_protos``' private pool from TF Serving's published field names and numbers::

    server_key: "-----BEGIN PRIVATE KEY-----\\n..."    # PEM contents, not file paths
    server_cert: "-----BEGIN CERTIFICATE-----\\n..."
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."     # optional: CA for client certificates
    client_verify: true                                  # optional: require client certificates

TF Serving hands the strings to gRPC as they are; a config without a key or certificate
only fails when gRPC binds the port. Here that is checked on reading, in one line.
"""

from __future__ import annotations

import os

from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.project_protos import ProtoField, declare_messages
from tfsuite.serving_configs.textproto import parse_text_proto, read_text_proto

__all__ = ["SSLConfig", "parse_ssl_config", "read_ssl_config", "validate_ssl_config"]

_F = ProtoField
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL

#: ``tensorflow.serving.SSLConfig`` (TF Serving's config/ssl_config.proto).
SSLConfig: type[Message] = declare_messages(
    "tfsuite/serving_configs/ssl_config.proto",
    {
        "SSLConfig": (
            _F("server_key", 1, _STRING),
            _F("server_cert", 2, _STRING),
            _F("custom_ca", 3, _STRING),
            _F("client_verify", 4, _BOOL),
        )
    },
)["SSLConfig"]


def validate_ssl_config(config: Message) -> None:
    """Key and certificate must be present and PEM text; client_verify needs custom_ca.

    Raised messages carry no file name: ``textproto`` puts ``<source>:`` in front.
    """
    for name in ("server_key", "server_cert"):
        value = getattr(config, name)
        if not value:
            raise ConfigError(f"{name} is required (PEM contents, not a file path)")
        if "-----BEGIN " not in value:
            raise ConfigError(
                f"{name} is not PEM text (expected '-----BEGIN ...'); "
                "put the file's contents in the string, not its path"
            )
    if config.client_verify and not config.custom_ca:  # type: ignore[attr-defined]
        raise ConfigError(
            "client_verify is true but custom_ca is empty; "
            "add the CA that signs the client certificates"
        )


def parse_ssl_config(text: str, *, source: str = "<text>") -> Message:
    """Parse and validate a text-format ``SSLConfig``."""
    return parse_text_proto(text, SSLConfig(), source, validate_ssl_config)


def read_ssl_config(path: str | os.PathLike[str]) -> Message:
    """Read and validate an ``--ssl_config_file``; ``ConfigError`` on any problem."""
    return read_text_proto(path, SSLConfig(), validate_ssl_config)
