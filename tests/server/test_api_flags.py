"""``tensorflow_model_server`` flag parsing (no servers, no TensorFlow)."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from tfsuite.errors import UsageError
from tfsuite.server.cli import serve
from tfsuite.server.flags import FLAGS, parse_flags, version_requested
from tfsuite.server.options import MAX_BATCHING_THREADS, default_thread_count, handler_thread_count
from tfsuite.serving_configs.batching import BatchingOptions

BASE = ["--model_base_path=/models/m"]


def test_equals_and_space_forms_give_the_same_options() -> None:
    a = parse_flags(["--port=9000", "--rest_api_port=9001", "--model_name=m", *BASE])
    b = parse_flags(["--port", "9000", "--rest_api_port", "9001", "--model_name", "m", *BASE])
    assert a == b
    assert (a.port, a.rest_api_port, a.model_name, a.model_base_path) == (
        9000,
        9001,
        "m",
        "/models/m",
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--enable_batching"], True),
        (["--enable_batching=true"], True),
        (["--enable_batching=True"], True),
        (["--enable_batching=false"], False),
        (["--enable_batching=0"], False),
        (["--noenable_batching"], False),
        ([], False),
    ],
)
def test_boolean_forms(args: list[str], expected: bool) -> None:
    assert parse_flags([*args, *BASE]).enable_batching is expected


def test_bare_boolean_does_not_swallow_the_next_flag() -> None:
    opts = parse_flags(["--enable_batching", "--port=7000", *BASE])
    assert opts.enable_batching and opts.port == 7000


def test_every_issue_flag_is_accepted_by_its_exact_name() -> None:
    names = [
        "port",
        "grpc_socket_path",
        "rest_api_port",
        "rest_api_timeout_in_ms",
        "rest_api_num_threads",
        "grpc_channel_arguments",
        "grpc_max_threads",
        "model_name",
        "model_base_path",
        "model_config_file",
        "model_config_file_poll_wait_seconds",
        "file_system_poll_wait_seconds",
        "enable_batching",
        "batching_parameters_file",
        "enable_per_model_batching_parameters",
        "monitoring_config_file",
        "enable_model_warmup",
        "num_request_iterations_for_warmup",
        "saved_model_tags",
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
        "tensorflow_session_parallelism",
        "allow_version_labels_for_unavailable_models",
        "ssl_config_file",
        "enable_grpc_healthcheck_service",
        "host",
    ]
    missing = [n for n in names if n not in FLAGS]
    assert not missing


def test_typed_values_and_defaults() -> None:
    opts = parse_flags(
        [
            "--rest_api_timeout_in_ms=1500",
            "--grpc_channel_arguments=grpc.max_concurrent_streams=1000",
            "--saved_model_tags=serve,gpu",
            "--file_system_poll_wait_seconds",
            "0",
            *BASE,
        ]
    )
    assert opts.rest_api_timeout_in_ms == 1500
    assert opts.grpc_channel_arguments == "grpc.max_concurrent_streams=1000"
    assert opts.tags == ["serve", "gpu"]
    assert opts.file_system_poll_wait_seconds == 0
    assert opts.port == 8500 and opts.rest_api_port == 0 and opts.host == "127.0.0.1"


def test_unknown_flag_names_it_and_suggests() -> None:
    with pytest.raises(UsageError) as err:
        parse_flags(["--model_bas_path=/m"])
    message = str(err.value)
    assert "--model_bas_path" in message and "--model_base_path" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port=abc", *BASE], "--port takes an integer"),
        (["--enable_batching=maybe", *BASE], "takes true or false"),
        (["--model_name"], "--model_name needs a value"),
        (["stray", *BASE], "unexpected argument 'stray'"),
        (["--batching_parameters_file=/b.txt", *BASE], "--enable_batching"),
        (["--port=8500", "--rest_api_port=8500", *BASE], "must differ from --port"),
        (["--port=0", *BASE], "--grpc_socket_path"),
        (["--port=70000", *BASE], "is not a port"),
        ([], "model_base_path"),
    ],
)
def test_bad_flags_raise_one_line_usage_errors(args: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_flags(args)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_port_zero_with_socket_and_ephemeral_ports() -> None:
    opts = parse_flags(["--port=0", "--grpc_socket_path=/tmp/s.sock", *BASE])
    assert opts.port == 0 and opts.grpc_socket_path == "/tmp/s.sock"
    opts = parse_flags(["--port=-1", "--rest_api_port=-1", *BASE])  # both ephemeral is fine
    assert (opts.port, opts.rest_api_port) == (-1, -1)


def test_gpu_tpu_tflite_flags_are_accepted_and_logged_as_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tfsuite.server.flags"):
        opts = parse_flags(
            [
                "--per_process_gpu_memory_fraction=0.5",
                "--prefer_tflite_model=true",
                "--skip_initialize_tpu",
                *BASE,
            ]
        )
    assert opts.per_process_gpu_memory_fraction == 0.5
    logged = caplog.text
    for name in ("per_process_gpu_memory_fraction", "prefer_tflite_model", "skip_initialize_tpu"):
        assert f"--{name}" in logged and "ignored" in logged


def test_batching_file_with_enable_batching_is_fine() -> None:
    opts = parse_flags(["--enable_batching", "--batching_parameters_file=/b.txt", *BASE])
    assert opts.enable_batching and opts.batching_parameters_file == "/b.txt"


def test_cli_help_lists_flags_and_port_scheme() -> None:
    result = CliRunner().invoke(serve, ["--help"])
    assert result.exit_code == 0
    assert "--model_base_path" in result.output and "--enable_batching" in result.output
    assert "-1 binds a free ephemeral port" in result.output


def test_cli_unknown_flag_is_a_usage_error_not_a_traceback() -> None:
    result = CliRunner().invoke(serve, ["--nonsense_flag=1"])
    assert isinstance(result.exception, UsageError)
    assert "--nonsense_flag" in str(result.exception)


@pytest.mark.parametrize("args", [["--version"], ["--version=true"], ["-version", "--port=1"]])
def test_version_prints_two_lines_and_exits_before_validating(args: list[str]) -> None:
    # No --model_base_path: TF Serving prints its version before checking flag values.
    result = CliRunner().invoke(serve, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("TensorFlow ModelServer: tfsuite-")
    assert lines[1].startswith("TensorFlow Library: 2.")


def test_version_false_or_absent_does_not_short_circuit() -> None:
    assert not version_requested(["--version=false", *BASE])
    assert not version_requested(["--noversion", *BASE])
    assert parse_flags(["--version=false", *BASE]).model_base_path == "/models/m"
    with pytest.raises(UsageError, match="unknown flag --bogus"):
        version_requested(["--version", "--bogus"])


def test_help_documents_version_timeout_and_batching_threads() -> None:
    out = CliRunner().invoke(serve, ["--help"]).output
    assert "--version" in out
    assert "NOT cancelled" in out and "--rest_api_timeout_in_ms" in out
    assert "(num_batch_threads + 1) x max_batch_size" in out


def test_handler_threads_rise_with_batching_unless_set() -> None:
    batching = BatchingOptions(max_batch_size=32, num_batch_threads=2)
    default = parse_flags([*BASE])
    assert handler_thread_count(default, "grpc_max_threads", None) == default_thread_count()
    batched = parse_flags(["--enable_batching", *BASE])
    expected = max(default_thread_count(), 3 * 32)
    assert handler_thread_count(batched, "grpc_max_threads", batching) == expected
    assert handler_thread_count(batched, "rest_api_num_threads", batching) == expected
    # TF Serving's default max_batch_size (1000) is capped.
    assert (
        handler_thread_count(batched, "grpc_max_threads", BatchingOptions()) == MAX_BATCHING_THREADS
    )
    # A value the user gave is kept, even when it equals the default.
    explicit = parse_flags(["--enable_batching", "--grpc_max_threads=3", *BASE])
    assert handler_thread_count(explicit, "grpc_max_threads", batching) == 3
    same = parse_flags([f"--grpc_max_threads={default_thread_count()}", *BASE])
    assert handler_thread_count(same, "grpc_max_threads", batching) == default_thread_count()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (0, 0)),
        (["--tensorflow_session_parallelism=3"], (3, 3)),
        (["--tensorflow_session_parallelism=3", "--tensorflow_intra_op_parallelism=2"], (2, 3)),
        (["--tensorflow_inter_op_parallelism=1"], (0, 1)),
    ],
)
def test_session_parallelism_fills_unset_intra_inter(
    args: list[str], expected: tuple[int, int]
) -> None:
    assert parse_flags([*args, *BASE]).intra_inter_threads() == expected
