"""BatchingParameters: the in-project message is TF Serving's on the wire and in text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import text_format, wrappers_pb2
from google.protobuf.internal.decoder import _DecodeVarint
from hypothesis import given, settings
from hypothesis import strategies as st

from tfsuite.serving_configs.batching import (
    BatchingOptions,
    BatchingParameters,
    parse_batching_parameters,
    read_batching_parameters,
    read_per_model_batching,
    write_batching_parameters,
)
from tfsuite.serving_configs.errors import ConfigError

# The example in TF Serving's batching/README.md (and TFSERVING_FACTS.md).
DOC_EXAMPLE = """
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 4 }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 32
pad_variable_length_inputs: false
"""

# TF Serving's session_bundle_config.proto, message BatchingParameters.
EXPECTED_FIELDS = {
    "max_batch_size": (1, "google.protobuf.Int64Value"),
    "batch_timeout_micros": (2, "google.protobuf.Int64Value"),
    "max_enqueued_batches": (3, "google.protobuf.Int64Value"),
    "num_batch_threads": (4, "google.protobuf.Int64Value"),
    "thread_pool_name": (5, "google.protobuf.StringValue"),
    "allowed_batch_sizes": (6, "int64"),
    "pad_variable_length_inputs": (7, "bool"),
    "enable_large_batch_splitting": (8, "google.protobuf.BoolValue"),
    "max_execution_batch_size": (9, "google.protobuf.Int64Value"),
}


def _wire_fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """Decode top-level (field number, wire type, payload) triples by hand."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _DecodeVarint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _DecodeVarint(data, pos)
            out.append((number, wire_type, value))
        elif wire_type == 2:
            length, pos = _DecodeVarint(data, pos)
            out.append((number, wire_type, data[pos : pos + length]))
            pos += length
        else:  # pragma: no cover - would be a schema mistake
            raise AssertionError(f"unexpected wire type {wire_type}")
    return out


def test_descriptor_matches_tf_serving() -> None:
    desc = BatchingParameters.DESCRIPTOR
    assert desc.full_name == "tensorflow.serving.BatchingParameters"
    got = {}
    for f in desc.fields:
        kind = f.message_type.full_name if f.message_type else {3: "int64", 8: "bool"}[f.type]
        got[f.name] = (f.number, kind)
    assert got == EXPECTED_FIELDS
    assert desc.fields_by_name["allowed_batch_sizes"].is_repeated
    assert desc.file.package == "tensorflow.serving"
    assert desc.file.dependencies[0].name == "google/protobuf/wrappers.proto"


def test_wire_format_by_hand() -> None:
    msg = parse_batching_parameters(DOC_EXAMPLE + 'thread_pool_name { value: "pool" }')
    fields = _wire_fields(msg.SerializeToString())
    by_number = {n: (wt, payload) for n, wt, payload in fields}
    # Wrapper fields: length-delimited submessages whose field 1 is the value.
    for number, expected in ((1, 32), (2, 1000), (3, 100), (4, 4)):
        wire_type, payload = by_number[number]
        assert wire_type == 2
        assert isinstance(payload, bytes)
        assert wrappers_pb2.Int64Value.FromString(payload).value == expected
    name = by_number[5][1]
    assert isinstance(name, bytes) and wrappers_pb2.StringValue.FromString(name).value == "pool"
    # proto3 packs repeated scalars: one length-delimited run of varints.
    wire_type, packed = by_number[6]
    assert wire_type == 2
    assert packed == bytes([8, 16, 32])
    # A proto3 bool false is not written at all.
    assert 7 not in by_number
    # And the real wrappers parse back into our class.
    assert BatchingParameters.FromString(msg.SerializeToString()) == msg


def test_text_written_matches_documented_format(tmp_path: Path) -> None:
    options = BatchingOptions(
        max_batch_size=32,
        batch_timeout_micros=1000,
        max_enqueued_batches=100,
        num_batch_threads=4,
        allowed_batch_sizes=[8, 16, 32],
    )
    path = write_batching_parameters(tmp_path / "batching_parameters.txt", options)
    text = path.read_text()
    assert text.startswith(
        "max_batch_size {\n  value: 32\n}\nbatch_timeout_micros {\n  value: 1000\n}\n"
    )
    assert "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\nallowed_batch_sizes: 32\n" in text
    # Same message as the documented example (text format parse of TF Serving's own sample).
    assert read_batching_parameters(path) == text_format.Parse(DOC_EXAMPLE, BatchingParameters())
    assert BatchingOptions.from_proto(read_batching_parameters(path)) == options


def test_defaults_for_unset_fields() -> None:
    opts = BatchingOptions.from_proto(parse_batching_parameters(""))
    assert opts.max_batch_size == 1000
    assert opts.batch_timeout_micros == 0
    assert opts.max_enqueued_batches == 10
    assert opts.num_batch_threads == (os.cpu_count() or 1)
    assert opts.allowed_batch_sizes == ()
    assert opts.pad_variable_length_inputs is False
    assert opts.enable_large_batch_splitting is False


def test_zero_value_in_wrapper_is_set_not_default() -> None:
    # Wrappers give presence: an explicit 0 timeout differs from "unset".
    msg = parse_batching_parameters("batch_timeout_micros { value: 0 }")
    assert msg.HasField("batch_timeout_micros")
    assert not msg.HasField("max_batch_size")


def test_round_trip_options() -> None:
    opts = BatchingOptions(
        max_batch_size=64,
        allowed_batch_sizes=(16, 64),
        pad_variable_length_inputs=True,
        enable_large_batch_splitting=True,
        max_execution_batch_size=64,
        thread_pool_name="mine",
    )
    assert BatchingOptions.from_proto(opts.to_proto()) == opts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16",
            (
                "Last entry in allowed_batch_sizes must match max_batch_size; "
                "last entry was 16; expected 32"
            ),
        ),
        (
            "allowed_batch_sizes: 8",  # unset max_batch_size means 1000
            (
                "Last entry in allowed_batch_sizes must match max_batch_size; "
                "last entry was 8; expected 1000"
            ),
        ),
        (
            (
                "max_batch_size { value: 16 } "
                "allowed_batch_sizes: 16 allowed_batch_sizes: 8 allowed_batch_sizes: 16"
            ),
            "allowed_batch_sizes entries must be monotonically increasing",
        ),
        (
            "max_batch_size { value: 16 } allowed_batch_sizes: 0 allowed_batch_sizes: 16",
            "allowed_batch_sizes entries must be positive",
        ),
        ("max_batch_size { value: 0 }", "max_batch_size must be positive; got 0"),
        ("num_batch_threads { value: -1 }", "num_batch_threads must be positive; got -1"),
        ("max_enqueued_batches { value: 0 }", "max_enqueued_batches must be positive"),
        ("batch_timeout_micros { value: -5 }", "batch_timeout_micros must be >= 0"),
        (
            (
                "max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
                "max_execution_batch_size { value: 16 }"
            ),
            "max_batch_size should be greater or equal than max_execution_batch_size",
        ),
    ],
)
def test_validation_messages(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_batching_parameters(text, source="batching.txt")
    assert str(err.value).startswith("batching.txt: ")
    assert message in str(err.value)


def test_parse_error_has_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "batching_parameters.txt"
    path.write_text("max_batch_size { value: 32 }\nmax_batch_size: 32\n")
    with pytest.raises(
        ConfigError,
        match=rf"^Invalid protobuf file: '{path}': Error parsing text-format "
        r"tensorflow.serving.BatchingParameters: 2:",
    ):
        read_batching_parameters(path)


def test_options_constructor_validates() -> None:
    with pytest.raises(ConfigError, match="Last entry in allowed_batch_sizes must match"):
        BatchingOptions(max_batch_size=32, allowed_batch_sizes=[8, 16])


def test_write_refuses_invalid_message(tmp_path: Path) -> None:
    msg = BatchingParameters()
    msg.max_batch_size.value = 4
    msg.allowed_batch_sizes.extend([2, 3])
    with pytest.raises(ConfigError, match="Last entry"):
        write_batching_parameters(tmp_path / "b.txt", msg)
    assert list(tmp_path.iterdir()) == []


def test_per_model_batching(tmp_path: Path) -> None:
    version = tmp_path / "1"
    version.mkdir()
    assert read_per_model_batching(version) is None
    (version / "batching_params.pbtxt").write_text("max_batch_size { value: 4 }")
    msg = read_per_model_batching(version)
    assert msg is not None and BatchingOptions.from_proto(msg).max_batch_size == 4


@settings(max_examples=60, deadline=None)
@given(
    max_batch_size=st.integers(1, 4096),
    timeout=st.integers(0, 10**7),
    enqueued=st.integers(1, 10**6),
    threads=st.integers(1, 256),
    extra_sizes=st.sets(st.integers(1, 4095), max_size=5),
    pad=st.booleans(),
)
def test_any_valid_options_round_trip_through_text(
    max_batch_size: int, timeout: int, enqueued: int, threads: int, extra_sizes: set[int], pad: bool
) -> None:
    sizes = tuple(sorted(s for s in extra_sizes if s < max_batch_size)) + (max_batch_size,)
    opts = BatchingOptions(
        max_batch_size=max_batch_size,
        batch_timeout_micros=timeout,
        max_enqueued_batches=enqueued,
        num_batch_threads=threads,
        allowed_batch_sizes=sizes,
        pad_variable_length_inputs=pad,
    )
    text = text_format.MessageToString(opts.to_proto())
    assert BatchingOptions.from_proto(parse_batching_parameters(text)) == opts
    wire = opts.to_proto().SerializeToString()
    assert BatchingOptions.from_proto(BatchingParameters.FromString(wire)) == opts
