"""TF Serving config messages that ``tensorflow-serving-api`` does not ship, built at runtime.

The pip package only carries the API protos and part of ``tensorflow_serving/config``; the
server-side ``BatchingParameters`` (``servables/tensorflow/session_bundle_config.proto``) and
``MonitoringConfig`` / ``PrometheusConfig`` (``config/monitoring_config.proto``) are missing.
We describe them here from TF Serving's published field names, numbers and types, build a
``FileDescriptorProto`` for each and register it in a *private* descriptor pool, so:

- the full names are TF Serving's (``tensorflow.serving.BatchingParameters``), and text and
  binary encodings are the ones ``tensorflow_model_server`` reads;
- nothing is added to protobuf's default pool, so a future tensorflow-serving-api that ships
  these files cannot collide with ours;
- no generated code is copied into the tree and no ``protoc`` step is needed.

Field list as of tensorflow/serving master (2026): BatchingParameters has fields 1-9; the
batch-op options people also ask about (batch_padding_policy, enable_lazy_split,
mixed_priority_*) are attributes of TensorFlow's ``BatchFunction`` op, not of this message.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
from google.protobuf.message import Message

__all__ = [
    "PACKAGE",
    "POOL",
    "BatchingParameters",
    "MonitoringConfig",
    "PrometheusConfig",
    "ProtoField",
    "declare_messages",
]

PACKAGE = "tensorflow.serving"
_WRAPPERS = "google/protobuf/wrappers.proto"

_F = descriptor_pb2.FieldDescriptorProto


@dataclass(frozen=True)
class _Field:
    """One field as TF Serving's .proto declares it."""

    name: str
    number: int
    type: int  # FieldDescriptorProto.Type
    type_name: str = ""  # fully qualified, with leading dot, for message fields
    repeated: bool = False


# session_bundle_config.proto, message BatchingParameters (numbers are not in declaration order
# there either: 8 and 9 were added later and declared before 6 and 7).
_BATCHING_FIELDS: tuple[_Field, ...] = (
    _Field("max_batch_size", 1, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    _Field("batch_timeout_micros", 2, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    _Field("max_enqueued_batches", 3, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    _Field("num_batch_threads", 4, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    _Field("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue"),
    _Field("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, ".google.protobuf.BoolValue"),
    _Field("max_execution_batch_size", 9, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    _Field("allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True),
    _Field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
)

# monitoring_config.proto
_PROMETHEUS_FIELDS: tuple[_Field, ...] = (
    _Field("enable", 1, _F.TYPE_BOOL),
    _Field("path", 2, _F.TYPE_STRING),
)
_MONITORING_FIELDS: tuple[_Field, ...] = (
    _Field("prometheus_config", 1, _F.TYPE_MESSAGE, f".{PACKAGE}.PrometheusConfig"),
)


def _message(name: str, fields: tuple[_Field, ...]) -> descriptor_pb2.DescriptorProto:
    msg = descriptor_pb2.DescriptorProto(name=name)
    for f in fields:
        fd = msg.field.add(
            name=f.name,
            number=f.number,
            type=f.type,  # type: ignore[arg-type]
            label=_F.LABEL_REPEATED if f.repeated else _F.LABEL_OPTIONAL,
            json_name=_json_name(f.name),
        )
        if f.type_name:
            fd.type_name = f.type_name
    return msg


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _file(name: str, messages: list[descriptor_pb2.DescriptorProto], deps: list[str]) -> bytes:
    fdp = descriptor_pb2.FileDescriptorProto(
        name=name, package=PACKAGE, syntax="proto3", dependency=deps
    )
    fdp.message_type.extend(messages)
    return fdp.SerializeToString()


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(
        _file(
            "tfsuite/serving_configs/session_bundle_config.proto",
            [_message("BatchingParameters", _BATCHING_FIELDS)],
            [_WRAPPERS],
        )
    )
    pool.AddSerializedFile(
        _file(
            "tfsuite/serving_configs/monitoring_config.proto",
            [
                _message("PrometheusConfig", _PROMETHEUS_FIELDS),
                _message("MonitoringConfig", _MONITORING_FIELDS),
            ],
            [],
        )
    )
    return pool


#: The private pool holding the messages below (and google/protobuf/wrappers.proto).
POOL = _build_pool()


def _class(name: str) -> type[Message]:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


#: ``tensorflow.serving.BatchingParameters`` (TF Serving's session_bundle_config.proto).
BatchingParameters = _class("BatchingParameters")
#: ``tensorflow.serving.PrometheusConfig`` (TF Serving's config/monitoring_config.proto).
PrometheusConfig = _class("PrometheusConfig")
#: ``tensorflow.serving.MonitoringConfig`` (TF Serving's config/monitoring_config.proto).
MonitoringConfig = _class("MonitoringConfig")


#: Public name of the field record, for modules that declare more TF Serving messages.
ProtoField = _Field


def declare_messages(
    file_name: str, messages: dict[str, tuple[ProtoField, ...]]
) -> dict[str, type[Message]]:
    """Add one more TF Serving ``.proto`` (messages in ``PACKAGE``) to ``POOL``; name -> class.

    For config messages declared next to their reader (e.g. ``ssl.py``'s ``SSLConfig``).
    """
    POOL.AddSerializedFile(_file(file_name, [_message(n, f) for n, f in messages.items()], []))
    return {name: _class(name) for name in messages}
