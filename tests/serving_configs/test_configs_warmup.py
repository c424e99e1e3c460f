"""Warmup records: TFRecord framing of PredictionLog, as TF Serving reads it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2, predict_pb2

from tfsuite.clients.codec import make_tensor_proto
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.warmup import (
    MAX_WARMUP_RECORDS,
    PredictionLog,
    read_warmup_requests,
    warmup_path,
    write_warmup_requests,
)


def _predict(i: int) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "m"
    req.model_spec.signature_name = "serving_default"
    req.inputs["x"].CopyFrom(make_tensor_proto(np.full((1, 3), i, dtype=np.float32)))
    return req


@pytest.fixture()
def version_dir(tmp_path: Path) -> Path:
    d = tmp_path / "m" / "1"
    d.mkdir(parents=True)
    return d


def _frames(data: bytes) -> list[bytes]:
    """Split a TFRecord file by hand: u64 length, u32 crc, data, u32 crc."""
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += 12
        out.append(data[pos : pos + length])
        pos += length + 4
    assert pos == len(data)
    return out


def test_round_trip_and_location(version_dir: Path) -> None:
    requests = [_predict(i) for i in range(3)]
    path = write_warmup_requests(version_dir, requests)
    assert path == version_dir / "assets.extra" / "tf_serving_warmup_requests"
    logs = read_warmup_requests(version_dir)
    assert [log.predict_log.request for log in logs] == requests
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files


def test_file_is_tfrecord_of_prediction_logs(version_dir: Path) -> None:
    import tensorflow as tf

    cls = classification_pb2.ClassificationRequest()
    cls.model_spec.name = "m"
    explicit = PredictionLog()
    explicit.regress_log.request.model_spec.name = "m"
    write_warmup_requests(version_dir, [_predict(7), cls, explicit])
    path = warmup_path(version_dir)
    records = [bytes(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]
    assert records == _frames(path.read_bytes())
    kinds = [PredictionLog.FromString(r).WhichOneof("log_type") for r in records]
    assert kinds == ["predict_log", "classify_log", "regress_log"]


def test_too_many_on_write(version_dir: Path) -> None:
    with pytest.raises(ConfigError, match="at most 1000"):
        write_warmup_requests(version_dir, [_predict(0)] * (MAX_WARMUP_RECORDS + 1))
    assert not warmup_path(version_dir).exists()


def test_too_many_on_read(version_dir: Path) -> None:
    import tensorflow as tf

    path = warmup_path(version_dir)
    path.parent.mkdir()
    record = PredictionLog(predict_log={"request": _predict(0)}).SerializeToString()
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(MAX_WARMUP_RECORDS + 1):
            writer.write(record)
    expected = r"Number of warmup records exceeds the maximum \(1000\) at "
    with pytest.raises(ConfigError, match=expected):
        read_warmup_requests(version_dir)


def test_corrupt_record(version_dir: Path) -> None:
    path = write_warmup_requests(version_dir, [_predict(1), _predict(2)])
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload: its data crc no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as err:
        read_warmup_requests(version_dir)
    msg = str(err.value)
    assert "corrupted record" in msg
    assert msg.endswith("Please verify your warmup data is in TFRecord format.")
    assert "function_node" not in msg and "\n" not in msg


def test_not_a_prediction_log(version_dir: Path) -> None:
    import tensorflow as tf

    path = warmup_path(version_dir)
    path.parent.mkdir()
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"\xff\xff\xff")  # valid framing, invalid protobuf
    with pytest.raises(ConfigError, match="Failed to parse warmup record 0"):
        read_warmup_requests(version_dir)


def test_unsupported_log_type(version_dir: Path) -> None:
    log = PredictionLog()
    log.session_run_log.SetInParent()
    with pytest.raises(ConfigError, match="Unsupported log_type for warmup: session_run_log"):
        write_warmup_requests(version_dir, [log])


def test_no_warmup_file_is_fine(version_dir: Path) -> None:
    assert read_warmup_requests(version_dir) == []


def test_bad_inputs(version_dir: Path) -> None:
    with pytest.raises(ConfigError, match="cannot use a ModelSpec"):
        write_warmup_requests(version_dir, [_predict(0).model_spec])
    with pytest.raises(ConfigError, match="no warmup requests"):
        write_warmup_requests(version_dir, [])
    with pytest.raises(ConfigError, match="not a directory"):
        write_warmup_requests(version_dir / "nope", [_predict(0)])
