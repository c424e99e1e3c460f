"""ModelManager through the DataPlane: policies, labels, polling, reload, failed loads, draining."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from tfsuite.server.dataplane import DataPlane, RequestSpec
from tfsuite.server.errors import ServingError
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.model_config import parse_model_config

X = {"x": np.array([1.0, 2.0], np.float32)}


def _config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "models.config"
    path.write_text(text)
    return str(path)


def _model_m_config(tmp_path: Path, base: Path, extra: str = "") -> str:
    """A models.config serving ``base`` as model "m"; ``extra``: more ModelConfig fields."""
    return _config_file(
        tmp_path,
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
        f'model_platform: "tensorflow" {extra} }} }}',
    )


def _states(dp: DataPlane, name: str) -> dict[int, str]:
    try:
        return {s.version: s.state for s in dp.get_model_status(name)}
    except ServingError:
        return {}


class _PredictLoad:
    """Threads predicting each spec in a loop until the ``with`` block ends.

    ``served``: the version of every answer; ``failures``: every exception (any fails a test).
    """

    def __init__(self, dp: DataPlane, *specs: RequestSpec) -> None:
        self.served: list[int] = []
        self.failures: list[BaseException] = []
        self._dp = dp
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._loop, args=(s,)) for s in specs]

    def _loop(self, spec: RequestSpec) -> None:
        while not self._stop.is_set():
            try:
                version = self._dp.predict(spec, dict(X))[0]
            except BaseException as exc:
                self.failures.append(exc)
                continue
            with self._progress:
                self.served.append(version)
                self._progress.notify_all()

    def wait_for(self, predicate: Callable[[list[int]], bool]) -> bool:
        """Wait (at most 30 s) until ``predicate(served)`` holds."""
        with self._progress:
            return self._progress.wait_for(lambda: predicate(self.served), timeout=30)

    def __enter__(self) -> _PredictLoad:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)


def _y(dp: DataPlane, spec: RequestSpec) -> tuple[int, list[float]]:
    version, out = dp.predict(spec, dict(X))
    return version, out["y"].tolist()


def test_single_model_serves_latest_version_only(make_model_base, start_dataplane) -> None:
    base = make_model_base({1: "half_plus_two", 2: "half_plus_three"})
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    assert _y(dp, RequestSpec("m")) == (2, [3.5, 4.0])
    assert _states(dp, "m") == {2: "AVAILABLE"}
    with pytest.raises(ServingError) as err:
        dp.predict(RequestSpec("m", version=1), dict(X))
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert err.value.message == "Servable not found for request: Specific(m, 1)"


def test_non_integer_version_dirs_are_ignored(make_model_base, start_dataplane) -> None:
    base = make_model_base({1: "half_plus_two"})
    (base / "abc").mkdir()
    (base / "7x").mkdir()
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    assert _states(dp, "m") == {1: "AVAILABLE"}


def test_version_policies_from_config(make_model_base, start_dataplane, tmp_path) -> None:
    base = make_model_base({1: "half_plus_two", 2: "half_plus_three", 3: "half_plus_two"})
    config = _config_file(
        tmp_path,
        f"""
        model_config_list {{
          config {{ name: "all" base_path: "{base}" model_platform: "tensorflow"
                   model_version_policy {{ all {{}} }} }}
          config {{ name: "specific" base_path: "{base}" model_platform: "tensorflow"
                   model_version_policy {{ specific {{ versions: 1 versions: 2 }} }} }}
          config {{ name: "latest2" base_path: "{base}" model_platform: "tensorflow"
                   model_version_policy {{ latest {{ num_versions: 2 }} }} }}
        }}""",
    )
    dp = start_dataplane(model_config_file=config)
    assert _states(dp, "all") == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}
    assert _states(dp, "specific") == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert _states(dp, "latest2") == {2: "AVAILABLE", 3: "AVAILABLE"}
    assert _y(dp, RequestSpec("specific")) == (2, [3.5, 4.0])  # newest loaded version
    assert _y(dp, RequestSpec("specific", version=1)) == (1, [2.5, 3.0])


def test_version_labels(make_model_base, start_dataplane, tmp_path) -> None:
    base = make_model_base({1: "half_plus_two", 2: "half_plus_three"})
    config = _model_m_config(
        tmp_path,
        base,
        "model_version_policy { all {} } "
        'version_labels { key: "original" value: 1 } version_labels { key: "quant" value: 2 }',
    )
    dp = start_dataplane(model_config_file=config)
    assert _y(dp, RequestSpec("m", label="original")) == (1, [2.5, 3.0])
    assert _y(dp, RequestSpec("m", label="quant")) == (2, [3.5, 4.0])
    with pytest.raises(ServingError) as err:
        dp.predict(RequestSpec("m", label="nope"), dict(X))
    assert (err.value.code, err.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: nope",
    )
    assert [s.version for s in dp.get_model_status("m", label="quant")] == [2]


def test_label_on_unloaded_version_fails_unless_allowed(
    make_model_base, start_dataplane, tmp_path
) -> None:
    base = make_model_base({1: "half_plus_two"})
    config = _model_m_config(tmp_path, base, 'version_labels { key: "future" value: 5 }')
    with pytest.raises(ServingError) as err:
        start_dataplane(model_config_file=config)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 5 of model m, which is not currently available" in err.value.message

    dp = start_dataplane(model_config_file=config, allow_version_labels_for_unavailable_models=True)
    with pytest.raises(ServingError) as err:
        dp.predict(RequestSpec("m", label="future"), dict(X))
    assert err.value.message == "Servable not found for request: Specific(m, 5)"


def test_request_errors_for_unknown_models(half_plus_two_base, start_dataplane) -> None:
    dp = start_dataplane(model_name="m", model_base_path=str(half_plus_two_base))
    cases = [
        (RequestSpec(""), grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
        (
            RequestSpec("other"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(other)",
        ),
        (
            RequestSpec("m", version=9),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(m, 9)",
        ),
    ]
    for spec, code, message in cases:
        with pytest.raises(ServingError) as err:
            dp.predict(spec, dict(X))
        assert (err.value.code, err.value.message) == (code, message)
    with pytest.raises(ServingError, match="^Could not find any versions of model other$"):
        dp.get_model_status("other")
    with pytest.raises(ServingError, match="^Could not find any versions of model $"):
        dp.get_model_status("")
    with pytest.raises(ServingError, match="^Could not find version 3 of model m$") as err:
        dp.get_model_status("m", version=3)
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_failed_version_is_reported_while_others_serve(
    make_model_base, start_dataplane, tmp_path
) -> None:
    base = make_model_base({1: "half_plus_two", 2: "broken"})
    config = _model_m_config(tmp_path, base, "model_version_policy { all {} }")
    dp = start_dataplane(model_config_file=config)
    status = {s.version: s for s in dp.get_model_status("m")}
    assert status[1].state == "AVAILABLE" and status[1].error_code == grpc.StatusCode.OK
    assert status[2].state == "END" and status[2].error_code != grpc.StatusCode.OK
    assert status[2].error_code == grpc.StatusCode.DATA_LOSS
    assert status[2].error_message == f"Can't parse {base / '2' / 'saved_model.pb'} as binary proto"
    assert _y(dp, RequestSpec("m")) == (1, [2.5, 3.0])


def test_load_is_retried_max_num_load_retries_times(
    broken_model_base, start_dataplane, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="tfsuite.server.model_manager")
    dp = start_dataplane(
        model_name="b",
        model_base_path=str(broken_model_base),
        max_num_load_retries=2,
        load_retry_interval_micros=1000,
    )
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 3
    assert _states(dp, "b") == {1: "END"}


def test_load_and_unload_are_logged_with_source_and_time(
    half_plus_two_base, start_dataplane, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="tfsuite.server.model_manager")
    dp = start_dataplane(model_name="m", model_base_path=str(half_plus_two_base))
    dp.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert f"Loading servable version {{name: m version: 1}} from {half_plus_two_base / '1'}" in (
        messages
    )
    assert any(
        re.fullmatch(r"Successfully loaded servable version \{name: m version: 1\} in [\d.]+ s", m)
        for m in messages
    ), messages
    assert any(m.startswith("Unloaded servable version {name: m version: 1}") for m in messages)


def test_polling_loads_new_and_unloads_removed_versions_under_load(
    make_model_base, add_version, start_dataplane
) -> None:
    base = make_model_base({1: "half_plus_two"})
    dp = start_dataplane(model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=1)
    with _PredictLoad(dp, RequestSpec("m")) as load:
        assert load.wait_for(lambda served: 1 in served)
        add_version(base, 2, "half_plus_three")
        # The poll thread (1 s) loads version 2; the load moves over with no failed request.
        assert load.wait_for(lambda served: 2 in served)
        assert dp.manager.wait_for(lambda: _states(dp, "m").get(1) == "END", timeout=30)
        assert _states(dp, "m")[2] == "AVAILABLE"  # latest{1}: 2 replaced 1
        assert _y(dp, RequestSpec("m")) == (2, [3.5, 4.0])
    assert load.failures == []


def test_removed_version_dir_is_unloaded_under_load(
    make_model_base, start_dataplane, tmp_path
) -> None:
    base = make_model_base({1: "half_plus_two", 2: "half_plus_three"})
    config = _model_m_config(tmp_path, base, "model_version_policy { all {} }")
    dp = start_dataplane(model_config_file=config)
    with _PredictLoad(dp, RequestSpec("m"), RequestSpec("m", version=1)) as load:
        # "latest" is version 2 while the load runs
        assert load.wait_for(lambda served: 2 in served)
        shutil.rmtree(base / "2")
        dp.manager.poll_now()  # what each file-system poll does
        assert _states(dp, "m") == {1: "AVAILABLE", 2: "END"}
        n = len(load.served)
        assert load.wait_for(lambda served: len(served) > n + 10)
    assert load.failures == []  # neither "latest" nor version 1 requests failed
    assert _y(dp, RequestSpec("m")) == (1, [2.5, 3.0])


def test_unload_waits_for_in_flight_requests(make_model_base, start_dataplane) -> None:
    base = make_model_base({1: "half_plus_two"})
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    held = dp.manager.acquire("m")  # an in-flight request
    reload = threading.Thread(
        target=dp.reload_config, args=(parse_model_config("model_config_list {}"),)
    )
    reload.start()
    assert dp.manager.wait_for(lambda: _states(dp, "m").get(1) == "UNLOADING", timeout=30)
    with pytest.raises(ServingError):  # no new requests reach an unloading version
        dp.predict(RequestSpec("m"), dict(X))
    assert held.runner("serving_default").run(dict(X))["y"].tolist() == [2.5, 3.0]
    dp.manager.release(held)
    reload.join(30)
    assert _states(dp, "m") == {1: "END"}


def test_reload_config_replaces_models(make_model_base, start_dataplane) -> None:
    a = make_model_base({1: "half_plus_two"}, name="a")
    b = make_model_base({1: "half_plus_three"}, name="b")
    dp = start_dataplane(model_name="a", model_base_path=str(a))
    dp.reload_config(
        parse_model_config(
            f'model_config_list {{ config {{ name: "b" base_path: "{b}" '
            'model_platform: "tensorflow" } }'
        )
    )
    assert _y(dp, RequestSpec("b")) == (1, [3.5, 4.0])  # available when reload returns
    with pytest.raises(ServingError, match=r"Latest\(a\)"):
        dp.predict(RequestSpec("a"), dict(X))
    assert dp.manager.model_names() == ["b"]


def test_reload_config_rejects_invalid_configs(half_plus_two_base, start_dataplane) -> None:
    dp = start_dataplane(model_name="m", model_base_path=str(half_plus_two_base))
    from tfsuite.serving_configs.model_config import ModelServerConfig

    dup = ModelServerConfig()
    for _ in range(2):
        dup.model_config_list.config.add(name="x", base_path="/abs", model_platform="tensorflow")
    relative = ModelServerConfig()
    relative.model_config_list.config.add(
        name="x", base_path="rel/path", model_platform="tensorflow"
    )
    for config, message in [
        (dup, "Illegal to list model x multiple times in config list"),
        (relative, "Expected model x to have an absolute path or URI"),
    ]:
        with pytest.raises(ServingError) as err:
            dp.reload_config(config)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.message
    assert _y(dp, RequestSpec("m")) == (1, [2.5, 3.0])  # still serving the old config


def test_config_file_polling_applies_changes(make_model_base, start_dataplane, tmp_path) -> None:
    a = make_model_base({1: "half_plus_two"}, name="a")
    b = make_model_base({1: "half_plus_three"}, name="b")
    entry = '  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
    path = tmp_path / "models.config"
    path.write_text("model_config_list {\n" + entry.format(n="a", p=a) + "}\n")
    dp = start_dataplane(model_config_file=str(path), model_config_file_poll_wait_seconds=1)
    tmp = tmp_path / "models.config.tmp"
    both = entry.format(n="a", p=a) + entry.format(n="b", p=b)
    tmp.write_text("model_config_list {\n" + both + "}\n")
    tmp.replace(path)
    assert dp.manager.wait_for(lambda: "b" in dp.manager.model_names(), timeout=30)
    assert _y(dp, RequestSpec("b")) == (1, [3.5, 4.0])


def test_invalid_config_file_fails_start(tmp_path, start_dataplane) -> None:
    config = _config_file(
        tmp_path,
        'model_config_list { config { name: "x" base_path: "rel" model_platform: "tensorflow" } }',
    )
    with pytest.raises(ConfigError, match="absolute path or URI"):
        start_dataplane(model_config_file=config)


def test_moving_a_label_needs_an_available_version(make_model_base, start_dataplane) -> None:
    base = make_model_base({1: "half_plus_two", 2: "half_plus_three"})

    def config(versions: str, label_version: int) -> object:
        return parse_model_config(
            f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
            f'model_platform: "tensorflow" model_version_policy {{ specific {{ {versions} }} }} '
            f'version_labels {{ key: "stable" value: {label_version} }} }} }}'
        )

    dp = start_dataplane(
        model_config_file="",
        model_name="m",
        model_base_path=str(base),
        allow_version_labels_for_unavailable_models=True,
    )
    dp.reload_config(config("versions: 1", 1))
    assert _y(dp, RequestSpec("m", label="stable")) == (1, [2.5, 3.0])
    # Moving "stable" to version 3 (not on disk) fails even with the allow flag; the label
    # keeps pointing at version 1.
    with pytest.raises(ServingError) as err:
        dp.reload_config(config("versions: 1 versions: 3", 3))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert _y(dp, RequestSpec("m", label="stable")) == (1, [2.5, 3.0])
    # Loading version 2 and moving the label to it in one change works once 2 is available
    # (the reload returns after the load).
    dp.reload_config(config("versions: 1 versions: 2", 2))
    assert _y(dp, RequestSpec("m", label="stable")) == (2, [3.5, 4.0])


def test_failed_version_is_retried_when_its_dir_is_replaced(
    make_model_base, add_version, start_dataplane
) -> None:
    base = make_model_base({1: "broken"})
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    assert _states(dp, "m") == {1: "END"}
    dp.manager.poll_now()  # a failed version is not retried as such
    assert _states(dp, "m") == {1: "END"}
    shutil.rmtree(base / "1")
    dp.manager.poll_now()
    add_version(base, 1, "half_plus_two")  # fixed and published again
    dp.manager.poll_now()
    assert _states(dp, "m") == {1: "AVAILABLE"}
    assert _y(dp, RequestSpec("m")) == (1, [2.5, 3.0])


def test_wrong_tags_and_missing_saved_model_are_load_errors(
    make_model_base, start_dataplane
) -> None:
    base = make_model_base({1: "half_plus_two"})
    (base / "2").mkdir()  # a version dir without a SavedModel
    dp = start_dataplane(model_name="m", model_base_path=str(base))
    (row,) = dp.get_model_status("m")
    assert (row.version, row.state, row.error_code) == (2, "END", grpc.StatusCode.NOT_FOUND)
    assert row.error_message.startswith("Could not find SavedModel .pb or .pbtxt")

    other = make_model_base({1: "half_plus_two"}, name="tags")
    dp = start_dataplane(model_name="t", model_base_path=str(other), saved_model_tags="serve,gpu")
    (row,) = dp.get_model_status("t")
    assert (row.state, row.error_code) == ("END", grpc.StatusCode.NOT_FOUND)
    assert row.error_message.startswith(
        "Could not find meta graph def matching supplied tags: { gpu serve }."
    )
