"""The Locust integration's pieces without a run: options, stages, histogram merging,
the ``tfsuite locust`` command line."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys

import pytest

from tfsuite.errors import UsageError
from tfsuite.loadtest.stats import LatencyHistogram
from tfsuite.loadtest.swarm.cli import locust_argv, locustfile_path
from tfsuite.loadtest.swarm.histograms import EntryHistograms
from tfsuite.loadtest.swarm.options import SwarmSettings, add_arguments
from tfsuite.loadtest.swarm.outputs import entry_slug
from tfsuite.loadtest.swarm.stages import plan_stages


def _settings(*argv: str) -> SwarmSettings:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web-host", dest="web_host", default="")
    add_arguments(parser)
    return SwarmSettings.from_options(parser.parse_args(list(argv)))


def test_options_parse_into_typed_settings_and_bind_the_web_ui_locally() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web-host", dest="web_host", default="")
    add_arguments(parser)
    options = parser.parse_args(
        ["--tfs-model", "m", "--tfs-versions", "1,2", "--tfs-weights", "3,1"]
    )
    settings = SwarmSettings.from_options(options)
    assert (settings.model, settings.versions, settings.weights) == ("m", (1, 2), (3.0, 1.0))
    assert settings.deadline_s == 10.0 and not settings.shaped
    assert options.web_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "--tfs-model is required"),
        (["--tfs-model", "m", "--tfs-versions", "1,x"], "comma list of numbers"),
        (["--tfs-model", "m", "--tfs-versions", "1", "--tfs-labels", "a"], "not both"),
        (["--tfs-model", "m", "--tfs-versions", "1,2", "--tfs-weights", "1"], "1 value(s) for 2"),
        (["--tfs-model", "m", "--tfs-steps", "1", "--tfs-rates", "5"], "not both"),
        (["--tfs-model", "m", "--tfs-batch-size", "0"], "at least 1"),
    ],
)
def test_bad_options_say_what_is_wrong_in_one_line(argv: list[str], says: str) -> None:
    with pytest.raises(UsageError) as err:
        _settings(*argv)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_stages_step_concurrency_rates_and_one_version_at_a_time() -> None:
    names = ["Predict m v1 a", "Predict m v2 b"]
    steps = plan_stages(_settings("--tfs-model", "m", "--tfs-steps", "2,8"), names, 1, None)
    assert [(s.mode, s.users, s.entries) for s in steps] == [
        ("closed", 2, None),
        ("closed", 8, None),
    ]
    rates = plan_stages(
        _settings("--tfs-model", "m", "--tfs-rates", "25", "--tfs-rate-per-user", "10"),
        names,
        1,
        None,
    )
    (stage,) = rates
    assert stage.users == 3 and stage.rate_per_user == pytest.approx(25 / 3)
    seq = plan_stages(_settings("--tfs-model", "m", "--tfs-sequential"), names, 4, 20.0)
    assert [(s.entries, s.users, s.duration_s) for s in seq] == [
        (("Predict m v1 a",), 4, 10.0),
        (("Predict m v2 b",), 4, 10.0),
    ]


def test_worker_reports_merge_losslessly_into_the_masters_histograms() -> None:
    rng = random.Random(3)
    whole = LatencyHistogram()
    master = EntryHistograms()
    for worker in range(3):
        recorder = EntryHistograms()
        recorder.expected_versions = {"Predict m v1": 1}
        for report in range(4):
            for _ in range(500):
                ms = rng.lognormvariate(0, 1)
                whole.record_ms(ms)
                recorder.on_request("grpc", "Predict m v1", ms, None)
            if report == 3:
                recorder.on_request("grpc", "Predict m v1", 1.0, _Coded("NOT_FOUND"))
                recorder.on_request("grpc", "Predict m v1", 2.0, None, {"reply_version": 2})
                whole.record_ms(1.0)
                whole.record_ms(2.0)
            master.merge_report(recorder.take_report())
        assert recorder.take_report() == {}  # nothing is sent twice
    merged = master.by_entry()["Predict m v1"]
    assert merged.histogram.count == whole.count == 3 * 2002
    for q in (50, 90, 99, 99.9, 99.99, 100):
        assert merged.histogram.percentile_ms(q) == whole.percentile_ms(q)
    assert dict(merged.errors_by_code) == {"NOT_FOUND": 3}
    assert merged.version_mismatches == 3  # answered by version 2


class _Coded(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.code = type("Code", (), {"name": name})()


def test_tfsuite_locust_resolves_a_module_name_to_its_file_and_adds_out(tmp_path) -> None:
    path = locustfile_path()
    assert path.endswith("loadtest/locustfile.py")
    argv = locust_argv(["-f", "tfsuite.loadtest.locustfile", "--headless"], out=tmp_path)
    assert argv[:2] == ["-f", path]
    assert argv[argv.index("--csv") + 1] == str(tmp_path / "locust")
    assert locust_argv(["--headless"])[:2] == ["-f", path]  # the suite's file by default
    kept = locust_argv(["--host", "h:1", "--csv", "x/y"], out=tmp_path, host="other:2")
    assert kept.count("--host") == 1 and kept.count("--csv") == 1
    with pytest.raises(UsageError, match="no such file or importable module"):
        locust_argv(["-f", "no.such.module"])


def test_entry_slugs_are_file_names() -> None:
    assert entry_slug("Predict mobilenet_v2 v2 weight_quant") == "mobilenet_v2_v2_weight_quant"
    assert entry_slug("Predict a/../b v1") == "a_.._b_v1"


def test_locustfile_imports_without_tensorflow_and_exports_its_classes() -> None:
    # In a process of its own: importing it patches the process (gevent, gRPC's poller).
    code = (
        "import sys, tfsuite.loadtest.locustfile as m\n"
        "assert all(hasattr(m, n) for n in m.__all__), m.__all__\n"
        "assert 'tensorflow' not in sys.modules, 'a load generator imported TensorFlow'\n"
        "print(sorted(m.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TFServingGrpcUser" in done.stdout and "TFServingShape" in done.stdout
