"""TF Serving's own test models in TF Serving's own layouts (``00000123`` version dirs, TF1
graphs with reference variables), served through the DataPlane as TF Serving serves them:
version dirs parsed like ``absl::SimpleAtoi``, no signature shape check, no variable noise,
and the bad base paths TF Serving's users meet (duplicates, half-copied and non-SavedModel
version dirs)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest

from tfsuite.server.dataplane import DataPlane, RequestSpec
from tfsuite.server.errors import ServingError
from tfsuite.serving_configs.model_config import parse_model_config

MANAGER_LOG = "tfsuite.server.model_manager"


def _status(dp: DataPlane, name: str) -> dict[int, tuple[str, grpc.StatusCode, str]]:
    return {s.version: (s.state, s.error_code, s.error_message) for s in dp.get_model_status(name)}


def _y(dp: DataPlane, spec: RequestSpec, x: list[float]) -> tuple[int, list[float]]:
    version, out = dp.predict(spec, {"x": np.array(x, np.float32)})
    return version, out["y"].ravel().tolist()


def test_half_plus_two_00000123_is_version_123_and_takes_a_1_shaped_x(
    tfserving_testdata: dict[str, Path], start_dataplane, capfd
) -> None:
    dp = start_dataplane(
        model_name="default", model_base_path=str(tfserving_testdata["half_plus_two"])
    )
    assert _status(dp, "default") == {123: ("AVAILABLE", grpc.StatusCode.OK, "")}
    # x's TensorInfo is [?,1]; TF Serving feeds [1] to the Session and answers 3.0.
    assert _y(dp, RequestSpec("default"), [2.0]) == (123, [3.0])
    assert _y(dp, RequestSpec("default", version=123), [1.0, 2.0, 5.0]) == (123, [2.5, 3.0, 4.5])
    _, out = dp.predict(RequestSpec("default"), {"x": np.array([[2.0]], np.float32)})
    assert out["y"].shape == (1, 1)
    # Reference variables are restored as they are: none of tf.saved_model.load's noise.
    assert "Unable to create a python object" not in capfd.readouterr().err


def test_load_is_logged_once_with_source_and_time(
    tfserving_testdata: dict[str, Path], start_dataplane, caplog
) -> None:
    caplog.set_level(logging.INFO, logger=MANAGER_LOG)
    base = tfserving_testdata["half_plus_two"]
    start_dataplane(model_name="default", model_base_path=str(base))
    loaded = [m for m in caplog.messages if m.startswith("Successfully loaded servable version")]
    assert len(loaded) == 1
    assert loaded[0].startswith("Successfully loaded servable version {name: default version: 123}")
    assert any(str(base / "00000123") in m for m in caplog.messages if m.startswith("Loading"))


def test_two_versions_latest_and_all(
    tfserving_testdata: dict[str, Path], start_dataplane, tmp_path
):
    base = tfserving_testdata["two_versions"]
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    assert _status(dp, "m") == {124: ("AVAILABLE", grpc.StatusCode.OK, "")}
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_platform: "tensorflow"'
        " model_version_policy { all {} }"
        ' version_labels { key: "stable" value: 123 } version_labels { key: "canary" value: 124 }'
        " } }"
    )
    dp = start_dataplane(model_config_file=str(config))
    assert {v: s[0] for v, s in _status(dp, "m").items()} == {123: "AVAILABLE", 124: "AVAILABLE"}
    assert _y(dp, RequestSpec("m", label="stable"), [2.0]) == (123, [3.0])
    assert _y(dp, RequestSpec("m", label="canary"), [2.0]) == (124, [3.0])
    assert _y(dp, RequestSpec("m"), [2.0]) == (124, [3.0])


def test_good_model_config_serves_both_and_reloads(
    tfserving_testdata: dict[str, Path], start_dataplane
) -> None:
    dp = start_dataplane(model_config_file=str(tfserving_testdata["good_model_config"]))
    assert _y(dp, RequestSpec("half_plus_two"), [2.0]) == (123, [3.0])
    assert _y(dp, RequestSpec("half_plus_three"), [2.0]) == (123, [4.0])
    # ReloadConfig to only half_plus_three, served from the 2-versions base's neighbour.
    dp.reload_config(
        parse_model_config(
            f'model_config_list {{ config {{ name: "half_plus_three" base_path: '
            f'"{tfserving_testdata["half_plus_three"]}" model_platform: "tensorflow" }} }}'
        )
    )
    assert _y(dp, RequestSpec("half_plus_three"), [4.0]) == (123, [5.0])
    with pytest.raises(ServingError) as err:
        dp.predict(RequestSpec("half_plus_two"), {"x": np.array([1.0], np.float32)})
    assert err.value.message == "Servable not found for request: Latest(half_plus_two)"


def test_classify_and_regress_on_the_tf1_signatures(
    tfserving_testdata: dict[str, Path], start_dataplane, float_examples
) -> None:
    dp = start_dataplane(model_name="m", model_base_path=str(tfserving_testdata["half_plus_three"]))
    examples = [e.SerializeToString() for e in float_examples(1.0, 2.0)]
    version, result = dp.classify(RequestSpec("m", signature_name="classify_x_to_y"), examples)
    assert version == 123
    np.testing.assert_allclose(np.asarray(result.scores).ravel(), [3.5, 4.0])
    _, values = dp.regress(RequestSpec("m", signature_name="regress_x_to_y"), examples)
    np.testing.assert_allclose(np.asarray(values).ravel(), [3.5, 4.0])


def test_leading_zeros_and_plus_parse_like_simple_atoi(make_model_base, start_dataplane) -> None:
    base = make_model_base({"01": "half_plus_two", "+0002": "half_plus_three", "x3": "tf1"})
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    assert _y(dp, RequestSpec("m"), [2.0]) == (2, [4.0])  # "+0002" is version 2, the latest
    config_dp = start_dataplane(
        model_name="m2", model_base_path=str(make_model_base({"07": "half_plus_two"}, "m2"))
    )
    assert _y(config_dp, RequestSpec("m2", version=7), [2.0]) == (7, [3.0])


def test_two_dirs_for_one_version_are_an_error_logged_once(
    make_model_base, start_dataplane, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger=MANAGER_LOG)
    base = make_model_base({"2": "half_plus_two", "002": "half_plus_three", "1": "half_plus_two"})
    config = base.parent / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { all {} } } }'
    )
    dp = start_dataplane(model_config_file=str(config))
    status = _status(dp, "m")
    assert status[1] == ("AVAILABLE", grpc.StatusCode.OK, "")
    state, code, message = status[2]
    assert (state, code) == ("END", grpc.StatusCode.FAILED_PRECONDITION)
    assert message == (
        "Duplicate version directories detected: 002, 2 all parse to version 2; "
        "remove or rename all but one"
    )
    dp.manager.poll_now()
    dp.manager.poll_now()
    logged = [m for m in caplog.messages if "Duplicate version directories" in m]
    assert len(logged) == 1
    # Remove one: the next poll loads the version from the dir that is left.
    shutil.rmtree(base / "002")
    dp.manager.poll_now()
    assert _y(dp, RequestSpec("m", version=2), [2.0]) == (2, [3.0])


def test_half_copied_version_fails_is_retried_and_the_others_keep_serving(
    tfserving_testdata: dict[str, Path], tmp_path: Path, start_dataplane, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger=MANAGER_LOG)
    base = tmp_path / "hp2"
    shutil.copytree(tfserving_testdata["half_plus_two"], base)
    half = base / "00000124"
    shutil.copytree(base / "00000123", half)
    (half / "variables" / "variables.data-00000-of-00001").unlink()  # the copy stopped here
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { all {} } } }'
    )
    dp = start_dataplane(
        model_config_file=str(config), max_num_load_retries=2, load_retry_interval_micros=1000
    )
    status = _status(dp, "m")
    assert status[123][0] == "AVAILABLE"
    state, code, message = status[124]
    assert state == "END" and code != grpc.StatusCode.OK
    assert str(half) in message
    attempts = [m for m in caplog.messages if "{name: m version: 124} failed" in m]
    assert len(attempts) == 3  # one try + --max_num_load_retries=2
    assert _y(dp, RequestSpec("m"), [2.0]) == (123, [3.0])  # latest AVAILABLE keeps serving


def test_version_dir_that_is_not_a_saved_model(make_model_base, start_dataplane) -> None:
    base = make_model_base({"00000001": "half_plus_two"})
    (base / "00000002").mkdir()
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    state, code, message = _status(dp, "m")[2]
    assert (state, code) == ("END", grpc.StatusCode.NOT_FOUND)
    assert message == (
        "Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
        f"{base / '00000002'}"
    )
