"""One Locust process's side of a TF Serving run: the listeners that tie the pieces together.

:data:`SESSION` is installed once on ``locust.events`` by the locustfile. Per process:

* ``init_command_line_parser``: the ``--tfs-*`` options (:mod:`.options`);
* ``init``: checks the options (one ``locust: error: ...`` line and exit 2 when they are
  wrong), keeps the one user class the options ask for (gRPC, or REST with ``--tfs-rest``),
  drops the load shape when no ``--tfs-steps/--tfs-rates/--tfs-sequential`` is given
  (Locust's -u/-r/-t then drive the run), and wires the HDR histograms into Locust's
  worker -> master reports;
* ``test_start``: resolves the plan against the server (:func:`.plan.resolve_plan`; an
  unknown version, a missing model or an unreachable server stops the run with one line);
* stages (:mod:`.stages`) begin on the master / local runner, which scrapes the server's
  Prometheus endpoint at every boundary and broadcasts the stage to the workers;
* ``quit``: the master / local runner writes the HDR files, ``percentiles.csv``, the server
  deltas and ``results.json`` next to Locust's ``--csv`` files (:mod:`.outputs`); this runs
  on Ctrl-C too, since Locust fires ``quit`` on every orderly shutdown.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.errors import TFSuiteError, UsageError
from tfsuite.loadtest.server_metrics import DEFAULT_METRICS_PATH, MetricsScraper, Snapshot
from tfsuite.loadtest.swarm.histograms import REPORT_KEY, EntryHistograms
from tfsuite.loadtest.swarm.options import SwarmSettings, add_arguments
from tfsuite.loadtest.swarm.plan import Plan, resolve_plan
from tfsuite.loadtest.swarm.stages import STAGE_MESSAGE, Stage, plan_stages, whole_run

#: Master -> workers: stop your users and report everything now; workers answer FLUSHED.
FLUSH_MESSAGE = "tfsuite_flush"
FLUSHED_MESSAGE = "tfsuite_flushed"
#: How long the master waits for the workers' last reports beyond Locust's --stop-timeout.
FLUSH_GRACE_S = 10.0

__all__ = ["SESSION", "StageRun", "SwarmSession"]

log = logging.getLogger("tfsuite.locust")


@dataclass
class StageRun:
    """One stage as it ran on the master / local runner."""

    stage: Stage
    started: float
    ended: float | None = None
    before: Snapshot | None = None
    after: Snapshot | None = None

    @property
    def duration_s(self) -> float:
        return max((self.ended or time.time()) - self.started, 1e-9)


class SwarmSession:
    """The per-process state of a run (see the module docstring)."""

    def __init__(self) -> None:
        self.environment: Any = None
        self.settings: SwarmSettings | None = None
        self.plan: Plan | None = None
        self.histograms = EntryHistograms()
        self.stage: Stage = whole_run(1)
        self.stages: list[Stage] = []
        self.stage_runs: list[StageRun] = []
        self.started: float | None = None
        self.ended: float | None = None
        self.failure: str | None = None
        self.interrupted = False
        """Ctrl-C (SIGINT) ended the run: results.json says it is incomplete."""
        self.scraper: MetricsScraper | None = None
        self._grpc: TFServingClient | None = None
        self._running = False
        self._planned_for: tuple[SwarmSettings, str | None] | None = None
        self._flushed: set[str] = set()
        self.user_classes: dict[str, type] = {}
        """'grpc' / 'rest' -> the locustfile's user classes (set by the locustfile)."""

    # -- wiring ------------------------------------------------------------------------------
    def install(self, events: Any) -> None:
        events.init_command_line_parser.add_listener(self._on_parser)
        events.init.add_listener(self._on_init)
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.quit.add_listener(self._on_quit)
        events.request.add_listener(self.histograms.on_request)

    @property
    def runner(self) -> Any:
        return self.environment.runner if self.environment is not None else None

    @property
    def is_worker(self) -> bool:
        return isinstance(self.runner, WorkerRunner)

    def _on_parser(self, parser: Any, **_: Any) -> None:
        add_arguments(parser)

    def _on_init(self, environment: Any, runner: Any, **_: Any) -> None:
        self.environment = environment
        options = environment.parsed_options
        forked_worker = self.is_worker and bool(getattr(options, "processes", None))
        if not self.is_worker or forked_worker:
            try:
                self.settings = SwarmSettings.from_options(options)
            except UsageError as exc:
                if not forked_worker:  # the parent of --processes says it once
                    sys.stderr.write(f"locust: error: {exc}\n")
                sys.exit(2)
        if self.is_worker:
            runner.register_message(STAGE_MESSAGE, self._on_stage_message)
            runner.register_message(FLUSH_MESSAGE, self._on_flush)
            environment.events.report_to_master.add_listener(self._on_report_to_master)
            return
        assert self.settings is not None
        self._note_interrupts()
        self._keep_user_class(environment, self.settings.rest)
        if environment.shape_class is not None and not self.settings.shaped:
            environment.shape_class = None  # Locust's own -u/-r/-t drive the run
        if isinstance(runner, MasterRunner):
            environment.events.worker_report.add_listener(self._on_worker_report)
            environment.events.test_stopping.add_listener(self._collect_last_reports)
            runner.register_message(FLUSHED_MESSAGE, self._on_flushed)
        url = self.settings.metrics_url
        if url is None and self.settings.rest and environment.host:
            url = environment.host.rstrip("/") + DEFAULT_METRICS_PATH
        self.scraper = MetricsScraper(url) if url else None

    def _note_interrupts(self) -> None:
        """Ctrl-C: remember it, and raise KeyboardInterrupt where Locust waits for the run.

        Python's own handler raises it in whichever greenlet happens to run, which can be a
        user halfway through reporting a request (counted by one listener and not by the
        next). Here it is raised from the hub into the main greenlet, as gevent raises its
        system errors, so every request is reported whole; Locust then shuts down as after
        any Ctrl-C, and ``quit`` writes the suite's files."""
        hub = gevent.get_hub()
        first: list[float] = []

        def on_sigint() -> None:
            # `tfsuite locust` passes a Ctrl-C on that the terminal also delivered: one stop.
            if first and time.monotonic() - first[0] < 1.0:
                return
            first.append(time.monotonic())
            self.interrupted = True
            hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt())

        gevent.signal_handler(signal.SIGINT, on_sigint)

    def _keep_user_class(self, environment: Any, rest: bool) -> None:
        ours = set(self.user_classes.values())
        wanted = self.user_classes.get("rest" if rest else "grpc")
        kept = [u for u in environment.user_classes if u not in ours or u is wanted]
        if kept:
            environment.user_classes = kept

    # -- test start / stop -------------------------------------------------------------------
    def prepare(self) -> bool:
        """Settings and plan for the test about to start (once per test); False on failure."""
        if self._running:
            return self.plan is not None
        self._running = True
        self.failure = None
        env = self.environment
        try:
            settings = SwarmSettings.from_options(env.parsed_options)
            if self.plan is None or (settings, env.host) != self._planned_for:
                self.plan = resolve_plan(settings, env.host)  # options or host changed (web UI)
            self.settings, self._planned_for = settings, (settings, env.host)
        except TFSuiteError as exc:
            self.plan = None
            self._fail(str(exc), getattr(exc, "exit_code", 1))
            return False
        self._apply_user_settings()
        self.histograms.expected_versions = {e.name: e.version for e in self.plan.entries}
        if not self.is_worker:
            self.histograms.reset()
            self.stage_runs = []
            self.started, self.ended = time.time(), None
            users = int(getattr(env.parsed_options, "num_users", None) or 1)
            run_time = getattr(env.parsed_options, "run_time", None)
            names = [e.name for e in self.plan.entries]
            self.stages = plan_stages(settings, names, users, run_time) if settings.shaped else []
            entries = ", ".join(f"{e.name} (weight {e.weight:g})" for e in self.plan.entries)
            log.info("tfsuite: %s at %s: %s", settings.model, env.host, entries)
        return True

    def _apply_user_settings(self) -> None:
        assert self.settings is not None
        rest = self.user_classes.get("rest")
        if rest is not None:
            rest.network_timeout = self.settings.deadline_s
            rest.connection_timeout = self.settings.deadline_s

    def _fail(self, message: str, exit_code: int) -> None:
        self.failure = message
        log.error("error: %s", message)
        env = self.environment
        env.process_exit_code = exit_code
        runner = env.runner
        if self.is_worker or runner is None:
            return
        headless = bool(getattr(env.parsed_options, "headless", False))
        gevent.spawn(runner.quit if headless else runner.stop)

    def _on_test_start(self, environment: Any, **_: Any) -> None:
        if not self.prepare() or self.is_worker:
            return
        if not self.stages:
            users = int(getattr(environment.parsed_options, "num_users", None) or 1)
            self.begin_stage(whole_run(users))

    def _on_test_stop(self, environment: Any, **_: Any) -> None:
        self._running = False
        if not self.is_worker:
            self.end_stage()
            self.ended = time.time()
        if self._grpc is not None:
            self._grpc.close()
            self._grpc = None

    def _on_quit(self, exit_code: int, **_: Any) -> None:
        if self.is_worker:
            sent = dict(self.histograms.sent)
            log.info(
                "tfsuite: worker sent %d request(s) in histograms: %s", sum(sent.values()), sent
            )
            return
        if self.plan is None or self.started is None:
            return
        from tfsuite.loadtest.swarm.outputs import write_outputs

        self.end_stage()
        self.ended = self.ended or time.time()
        write_outputs(self, exit_code)

    # -- stages ------------------------------------------------------------------------------
    def begin_stage(self, stage: Stage) -> None:
        """Master / local runner: close the running stage, start ``stage`` everywhere."""
        self.end_stage()
        before = self.scraper.snapshot() if self.scraper else None
        self.stage_runs.append(StageRun(stage, time.time(), before=before))
        self._apply_stage(stage)
        if isinstance(self.runner, MasterRunner):
            self.runner.send_message(STAGE_MESSAGE, stage.as_message())
        if stage.index or stage.entries:
            who = ", ".join(stage.entries) if stage.entries else "every entry"
            log.info("tfsuite: stage %d: %d user(s), %s", stage.index, stage.users, who)

    def end_stage(self) -> None:
        if self.stage_runs and self.stage_runs[-1].ended is None:
            run = self.stage_runs[-1]
            run.ended = time.time()
            run.after = self.scraper.snapshot() if self.scraper else None

    def _apply_stage(self, stage: Stage) -> None:
        self.stage = stage
        self.histograms.stage = stage.index

    def _on_stage_message(self, environment: Any, msg: Any, **_: Any) -> None:
        self._apply_stage(Stage.from_message(msg.data))

    @property
    def current_stage(self) -> Stage | None:
        """The stage running on the master / local runner (None before the first)."""
        runs = self.stage_runs
        return runs[-1].stage if runs and runs[-1].ended is None else None

    @property
    def active(self) -> tuple[str, ...] | None:
        """The entry names the current stage sends to (None: all)."""
        return self.stage.entries or None

    # -- distributed histograms --------------------------------------------------------------
    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = self.histograms.take_report()

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if report:
            self.histograms.merge_report(report)

    # Locust's master quits after sending "quit" and sleeping 0.5 s, and a worker's last
    # report (up to 3 s of requests: Locust's and the histograms alike) can arrive after
    # that and be lost. So when a test stops, the master asks every worker to stop its users
    # and report at once, and waits for the answers before Locust goes on.
    def _collect_last_reports(self, environment: Any, **_: Any) -> None:
        runner = environment.runner
        workers = {c.id for c in runner.clients.all if c.state != STATE_MISSING}
        if not workers:
            return
        self._flushed: set[str] = set()
        for worker in workers:
            runner.send_message(FLUSH_MESSAGE, None, client_id=worker)
        deadline = time.monotonic() + float(environment.stop_timeout or 0) + FLUSH_GRACE_S
        while not workers <= self._flushed and time.monotonic() < deadline:
            gevent.sleep(0.05)  # the master's receiving greenlet runs meanwhile
        if not workers <= self._flushed:
            log.warning(
                "tfsuite: %d worker(s) did not send their last report in time; their last "
                "seconds are missing from the counts",
                len(workers - self._flushed),
            )

    def _on_flushed(self, environment: Any, msg: Any, **_: Any) -> None:
        self._flushed.add(msg.node_id)

    def _on_flush(self, environment: Any, msg: Any, **_: Any) -> None:
        runner = environment.runner
        runner.stop()  # users stop (their in-flight calls end within the deadline)
        runner._send_stats()  # Locust's report (with the histograms), as on "quit"
        runner.send_message(FLUSHED_MESSAGE, None)

    # -- clients -----------------------------------------------------------------------------
    def grpc_client(self, host: str) -> TFServingClient:
        """The process's one gRPC channel (greenlets share it; gRPC multiplexes)."""
        if self._grpc is None:
            assert self.settings is not None and self.plan is not None
            from tfsuite.loadtest.swarm.users import LocustRequests

            address = host.split("://", 1)[-1].rstrip("/")
            self._grpc = TFServingClient(
                address,
                model=self.settings.model,
                timeout=self.settings.deadline_s,
                call_hooks=[LocustRequests(self.environment, self.plan)],
            )
        return self._grpc


SESSION = SwarmSession()
"""The process's session (the locustfile installs it on ``locust.events``)."""
