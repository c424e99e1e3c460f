"""Typed views of TF Serving's metadata and status answers (shared by gRPC and REST)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tfsuite.clients.codec import dtype_name

__all__ = [
    "ModelMetadata",
    "SignatureSpec",
    "TensorSpec",
    "VersionStatus",
    "metadata_from_response",
    "parse_signature_map",
    "parse_status",
]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature."""

    alias: str
    """The key clients use in ``inputs`` / ``outputs``."""
    dtype: str
    """numpy-style name: 'float32', 'uint8', 'string', ..."""
    shape: tuple[int | None, ...] | None
    """Dimensions, ``None`` for unknown sizes; ``None`` altogether for unknown rank."""
    tensor_name: str = ""
    """The graph tensor behind the alias (e.g. 'image_tensor:0')."""


@dataclass(frozen=True)
class SignatureSpec:
    """One signature of a model version."""

    name: str
    method_name: str
    """'tensorflow/serving/predict', '.../classify' or '.../regress'."""
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    """What GetModelMetadata says about one model version."""

    name: str
    version: int | None
    """The version that answered (the latest if none was asked for)."""
    signatures: dict[str, SignatureSpec]

    def signature(self, name: str | None = None) -> SignatureSpec:
        """The named signature (``serving_default`` by default); KeyError lists the known ones."""
        key = name or "serving_default"
        try:
            return self.signatures[key]
        except KeyError:
            raise KeyError(
                f"model {self.name} has no signature {key!r}; it has {sorted(self.signatures)}"
            ) from None


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatus."""

    version: int
    state: str
    """'START', 'LOADING', 'AVAILABLE', 'UNLOADING', 'END' (or 'UNKNOWN')."""
    error_code: str = "OK"
    error_message: str = ""


def _tensor_spec(alias: str, info: Any) -> TensorSpec:
    shape_proto = info.tensor_shape
    shape: tuple[int | None, ...] | None
    if shape_proto.unknown_rank:
        shape = None
    else:
        shape = tuple(d.size if d.size >= 0 else None for d in shape_proto.dim)
    return TensorSpec(alias=alias, dtype=dtype_name(info.dtype), shape=shape, tensor_name=info.name)


def parse_signature_map(name: str, version: int | None, sig_map: Any) -> ModelMetadata:
    """``SignatureDefMap`` message -> :class:`ModelMetadata`."""
    signatures: dict[str, SignatureSpec] = {}
    for key in sorted(sig_map.signature_def):
        sig = sig_map.signature_def[key]
        signatures[key] = SignatureSpec(
            name=key,
            method_name=sig.method_name,
            inputs={a: _tensor_spec(a, sig.inputs[a]) for a in sorted(sig.inputs)},
            outputs={a: _tensor_spec(a, sig.outputs[a]) for a in sorted(sig.outputs)},
        )
    return ModelMetadata(name=name, version=version, signatures=signatures)


def metadata_from_response(resp: get_model_metadata_pb2.GetModelMetadataResponse) -> ModelMetadata:
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    if "signature_def" in resp.metadata:
        resp.metadata["signature_def"].Unpack(sig_map)
    spec = resp.model_spec
    version = spec.version.value if spec.HasField("version") else None
    return parse_signature_map(spec.name, version, sig_map)


_STATE_NAMES = {
    v.number: v.name for v in get_model_status_pb2.ModelVersionStatus.State.DESCRIPTOR.values
}


def parse_status(resp: get_model_status_pb2.GetModelStatusResponse) -> list[VersionStatus]:
    out = []
    for s in resp.model_version_status:
        code = s.status.error_code
        out.append(
            VersionStatus(
                version=s.version,
                state=_STATE_NAMES.get(s.state, "UNKNOWN"),
                error_code=_error_code_name(code),
                error_message=s.status.error_message,
            )
        )
    return sorted(out, key=lambda v: v.version)


def _error_code_name(code: int) -> str:
    try:
        from tensorflow_serving.apis import status_pb2

        field_desc = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"]
        return field_desc.enum_type.values_by_number[code].name
    except (KeyError, ImportError):
        return str(code)
