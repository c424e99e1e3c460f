"""DynamicBatcher: merge/split, padding, queue limits, timeouts.

With plain callables, and with a real model through the DataPlane.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future

import grpc
import numpy as np
import pytest

from tfsuite.server.batching import (
    BatchScheduler,
    merge_inputs,
    padded_size,
    split_outputs,
    task_size,
)
from tfsuite.server.errors import ServingError
from tfsuite.serving_configs.batching import BatchingOptions


@pytest.fixture
def scheduler() -> Iterator[BatchScheduler]:
    sched = BatchScheduler(num_batch_threads=1)  # one thread: batch order is deterministic
    yield sched
    sched.stop(timeout=10)


class Recorder:
    """A model stand-in: doubles ``x`` and remembers the batch sizes it was called with."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.batches.append(inputs["x"].shape[0])
        return {"y": inputs["x"] * 2, "rows": np.arange(inputs["x"].shape[0])}


def _x(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float32)}


# -- pure functions ---------------------------------------------------------------------------
def test_merge_then_split_round_trips_rows_per_task() -> None:
    tasks = [_x(1, 2), _x(3), _x(4, 5, 6)]
    merged = merge_inputs(tasks, target_size=8)
    assert merged["x"].tolist() == [1, 2, 3, 4, 5, 6, 1, 1]  # padded with the first row
    parts = split_outputs({"y": merged["x"] * 10}, [2, 1, 3])
    assert [p["y"].tolist() for p in parts] == [[10, 20], [30], [40, 50, 60]]


def test_padded_size_picks_next_allowed_size() -> None:
    assert padded_size(3, (2, 4, 8)) == 4
    assert padded_size(8, (2, 4, 8)) == 8
    assert padded_size(5, ()) == 5


def test_variable_length_inputs_fail_without_padding() -> None:
    tasks = [{"s": np.ones((1, 2), np.int32)}, {"s": np.ones((1, 4), np.int32)}]
    with pytest.raises(ServingError) as err:
        merge_inputs(tasks, 2)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "Tensors with name 's' from different tasks have different shapes" in err.value.message


def test_variable_length_inputs_padded_to_widest() -> None:
    tasks = [{"s": np.array([[1, 2]], np.int32)}, {"s": np.array([[3, 4, 5, 6]], np.int32)}]
    merged = merge_inputs(tasks, 2, pad_variable_length_inputs=True)
    assert merged["s"].tolist() == [[1, 2, 0, 0], [3, 4, 5, 6]]
    strings = [{"t": np.array([[b"a"]], object)}, {"t": np.array([[b"b", b"c"]], object)}]
    assert merge_inputs(strings, 2, True)["t"].tolist() == [[b"a", b""], [b"b", b"c"]]


def test_task_size_checks_dim0() -> None:
    assert task_size({"a": np.zeros((3, 2)), "b": np.zeros(3)}) == 3
    with pytest.raises(ServingError, match="equal 0th-dimension size"):
        task_size({"a": np.zeros((3, 2)), "b": np.zeros(2)})
    with pytest.raises(ServingError, match="at least one dimension"):
        task_size({"a": np.zeros(())})


def test_split_rejects_outputs_without_batch_rows() -> None:
    with pytest.raises(ServingError, match="0 dimensions"):
        split_outputs({"y": np.float32(1)}, [1])


# -- scheduling with plain callables -----------------------------------------------------------
def test_tasks_queued_while_busy_form_one_batch(scheduler: BatchScheduler) -> None:
    gate = threading.Event()
    model = Recorder(gate)
    batcher = scheduler.add_queue(model, BatchingOptions(max_batch_size=8, num_batch_threads=1))
    first = batcher.submit(_x(0))
    assert model.entered.wait(10)  # the first batch (one task) is running and blocked
    futures = [batcher.submit(_x(i, i)) for i in range(1, 4)]  # 6 rows wait in one batch
    gate.set()
    assert first.result(10)["y"].tolist() == [0]
    results = [f.result(10) for f in futures]
    assert [r["y"].tolist() for r in results] == [[2, 2], [4, 4], [6, 6]]
    assert [r["rows"].tolist() for r in results] == [[0, 1], [2, 3], [4, 5]]
    assert model.batches == [1, 6]


def test_batch_padded_to_allowed_size_and_padding_stripped(scheduler: BatchScheduler) -> None:
    model = Recorder()
    params = BatchingOptions(
        max_batch_size=8, allowed_batch_sizes=(4, 8), batch_timeout_micros=0, num_batch_threads=1
    )
    observed: list[tuple[list[int], int]] = []
    batcher = scheduler.add_queue(model, params, lambda s, p, q: observed.append((list(s), p)))
    out = batcher.submit(_x(7, 8, 9)).result(10)
    assert out["y"].tolist() == [14, 16, 18]
    assert model.batches == [4]
    assert observed == [([3], 4)]


def test_timeout_lets_a_partial_batch_run(scheduler: BatchScheduler) -> None:
    model = Recorder()
    # A long max size and a short timeout: the lone task runs once the timeout passes.
    params = BatchingOptions(max_batch_size=64, batch_timeout_micros=20_000, num_batch_threads=1)
    batcher = scheduler.add_queue(model, params)
    assert batcher.submit(_x(1)).result(10)["y"].tolist() == [2]


def test_full_batch_runs_before_the_timeout(scheduler: BatchScheduler) -> None:
    model = Recorder()
    # An hour-long timeout: only "batch is full" can start it.
    params = BatchingOptions(
        max_batch_size=4, batch_timeout_micros=3_600_000_000, num_batch_threads=1
    )
    batcher = scheduler.add_queue(model, params)
    futures = [batcher.submit(_x(i)) for i in range(4)]
    assert [f.result(10)["y"].tolist() for f in futures] == [[0], [2], [4], [6]]
    assert model.batches == [4]


def test_task_larger_than_max_batch_size_rejected(scheduler: BatchScheduler) -> None:
    batcher = scheduler.add_queue(Recorder(), BatchingOptions(max_batch_size=2))
    with pytest.raises(ServingError) as err:
        batcher.submit(_x(1, 2, 3))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.message == "Task size 3 is larger than maximum input batch size 2"


def test_queue_full_is_unavailable(scheduler: BatchScheduler) -> None:
    gate = threading.Event()
    model = Recorder(gate)
    params = BatchingOptions(max_batch_size=1, max_enqueued_batches=2, num_batch_threads=1)
    batcher = scheduler.add_queue(model, params)
    running = batcher.submit(_x(0))
    assert model.entered.wait(10)
    queued: list[Future[dict[str, np.ndarray]]] = [batcher.submit(_x(1)), batcher.submit(_x(2))]
    with pytest.raises(ServingError) as err:
        batcher.submit(_x(3))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert err.value.message == (
        "The batch scheduling queue to which this task was submitted is full"
    )
    gate.set()
    assert [f.result(10)["y"].tolist() for f in [running, *queued]] == [[0], [2], [4]]


def test_model_error_reaches_every_task_of_the_batch(scheduler: BatchScheduler) -> None:
    def broken(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise ServingError.invalid_argument("boom")

    batcher = scheduler.add_queue(broken, BatchingOptions(max_batch_size=4))
    with pytest.raises(ServingError, match="boom"):
        batcher.submit(_x(1)).result(10)


def test_closed_queue_refuses_new_tasks_but_runs_queued(scheduler: BatchScheduler) -> None:
    model = Recorder()
    params = BatchingOptions(max_batch_size=64, batch_timeout_micros=3_600_000_000)
    batcher = scheduler.add_queue(model, params)
    pending = batcher.submit(_x(5))
    batcher.close()
    assert pending.result(10)["y"].tolist() == [10]
    with pytest.raises(ServingError) as err:
        batcher.submit(_x(1))
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


# -- a real model through the DataPlane --------------------------------------------------------
def test_dataplane_batches_concurrent_predicts_on_a_real_model(
    half_plus_two_base, tmp_path
) -> None:
    from tfsuite.server.dataplane import DataPlane, RequestSpec
    from tfsuite.server.metrics import PROCESSED_BATCH_SIZE
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.batching import write_batching_parameters

    params = write_batching_parameters(
        tmp_path / "batching.txt",
        BatchingOptions(
            max_batch_size=8,
            batch_timeout_micros=5000,
            num_batch_threads=1,
            allowed_batch_sizes=(4, 8),
        ),
    )
    options = ServerOptions(
        model_name="hp",
        model_base_path=str(half_plus_two_base),
        enable_batching=True,
        batching_parameters_file=str(params),
        file_system_poll_wait_seconds=0,
    )
    dp = DataPlane(options)
    dp.start()
    try:
        results: dict[int, np.ndarray] = {}

        def call(i: int) -> None:
            _, out = dp.predict(RequestSpec("hp"), {"x": np.array([i, i + 1], np.float32)})
            results[i] = out["y"]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert {i: r.tolist() for i, r in results.items()} == {
            i: [0.5 * i + 2, 0.5 * (i + 1) + 2] for i in range(6)
        }
        with pytest.raises(ServingError, match="Task size 9 is larger than maximum input batch"):
            dp.predict(RequestSpec("hp"), {"x": np.zeros(9, np.float32)})
        text = dp.metrics.render().decode()
        # Every processed batch was padded to an allowed size.
        labels = 'model_name="hp",model_version="1"'
        assert f'{PROCESSED_BATCH_SIZE}_bucket{{{labels},le="2"}} 0' in text
        assert f'{PROCESSED_BATCH_SIZE}_count{{model_name="hp",model_version="1"}}' in text
    finally:
        dp.stop()


def test_per_model_batching_parameters_override_the_file(make_model_base) -> None:
    from tfsuite.server.dataplane import DataPlane, RequestSpec
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.batching import PER_MODEL_BATCHING_FILE, write_batching_parameters

    base = make_model_base({1: "half_plus_two"})
    per_model = base / "1" / PER_MODEL_BATCHING_FILE
    write_batching_parameters(per_model, BatchingOptions(max_batch_size=2))
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        enable_batching=True,
        enable_per_model_batching_parameters=True,
        file_system_poll_wait_seconds=0,
    )
    dp = DataPlane(options)  # global defaults: max_batch_size 1000
    dp.start()
    try:
        _, out = dp.predict(RequestSpec("m"), {"x": np.ones(2, np.float32)})
        assert out["y"].tolist() == [2.5, 2.5]
        with pytest.raises(ServingError, match="Task size 3 is larger than maximum input batch"):
            dp.predict(RequestSpec("m"), {"x": np.ones(3, np.float32)})
    finally:
        dp.stop()


def test_batching_file_without_enable_batching_is_a_usage_error(tmp_path) -> None:
    from tfsuite.errors import UsageError
    from tfsuite.server.dataplane import DataPlane
    from tfsuite.server.options import ServerOptions

    with pytest.raises(UsageError, match="requires --enable_batching"):
        DataPlane(ServerOptions(batching_parameters_file=str(tmp_path / "b.txt")))


def test_large_batch_splitting_spreads_a_request_over_batches(scheduler: BatchScheduler) -> None:
    gate = threading.Event()
    model = Recorder(gate)
    params = BatchingOptions(
        max_batch_size=8,
        enable_large_batch_splitting=True,
        max_execution_batch_size=4,
        num_batch_threads=1,
    )
    batcher = scheduler.add_queue(model, params)
    first = batcher.submit(_x(100))  # runs alone and blocks: the rest queue behind it
    assert model.entered.wait(10)
    small = batcher.submit(_x(1))  # opens a batch with room for 3 more rows
    big = batcher.submit(_x(*range(2, 9)))  # 7 rows: 3 join that batch, 4 fill the next
    gate.set()
    assert first.result(10)["y"].tolist() == [200]
    assert small.result(10)["y"].tolist() == [2]
    assert big.result(10)["y"].tolist() == [2 * v for v in range(2, 9)]  # rows back in order
    assert model.batches == [1, 4, 4]
    with pytest.raises(ServingError, match="Task size 9 is larger than maximum input batch size 8"):
        batcher.submit(_x(*range(9)))


def test_split_parts_count_against_the_queue_limit(scheduler: BatchScheduler) -> None:
    gate = threading.Event()
    model = Recorder(gate)
    params = BatchingOptions(
        max_batch_size=8,
        enable_large_batch_splitting=True,
        max_execution_batch_size=2,
        max_enqueued_batches=3,
        num_batch_threads=1,
    )
    batcher = scheduler.add_queue(model, params)
    running = batcher.submit(_x(0))
    assert model.entered.wait(10)
    with pytest.raises(ServingError, match="queue to which this task was submitted is full"):
        batcher.submit(_x(*range(8)))  # needs 4 batches of 2 rows; only 3 may wait
    ok = batcher.submit(_x(*range(6)))  # 3 batches fit
    gate.set()
    assert running.result(10)["y"].tolist() == [0]
    assert ok.result(10)["y"].tolist() == [2 * v for v in range(6)]
    assert model.batches == [1, 2, 2, 2]


def test_bad_per_model_batching_file_fails_that_version(make_model_base) -> None:
    from tfsuite.server.dataplane import DataPlane
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.batching import PER_MODEL_BATCHING_FILE

    base = make_model_base({1: "half_plus_two"})
    (base / "1" / PER_MODEL_BATCHING_FILE).write_text("max_batch_size { value: 0 }")
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        enable_batching=True,
        enable_per_model_batching_parameters=True,
        file_system_poll_wait_seconds=0,
        max_num_load_retries=0,
    )
    dp = DataPlane(options)
    dp.start()
    try:
        (row,) = dp.get_model_status("m")
        assert (row.state, row.error_code) == ("END", grpc.StatusCode.INVALID_ARGUMENT)
        assert "max_batch_size must be positive" in row.error_message
    finally:
        dp.stop()
