"""``ModelManager``: which model versions are loaded, and handing them out to requests.

What TF Serving's ServerCore + AspiredVersionsManager + FileSystemStoragePathSource do,
in one object:

- models come from ``--model_config_file`` (``model_config_list``) or single-model mode
  (``--model_name`` / ``--model_base_path``); each has a version policy (latest{N} / all /
  specific) and version labels;
- a *reconcile pass* lists each base path (version dir names are parsed as TF Serving's
  ``absl::SimpleAtoi`` parses them, so ``00000123`` is version 123; anything else is
  ignored; two dirs parsing to one version make that version an error), starts loading
  aspired versions that are not loaded and unloads loaded ones that are no longer aspired,
  as TF Serving's AvailabilityPreservingPolicy does: an old version goes only once a newer
  aspired one is AVAILABLE (or nothing is aspired), so a broken new version never takes a
  model dark;
- each load runs on its own loader thread, retry waits included, holding no lock: a
  retrying version blocks neither the polls nor ``reload_config``;
- a poll thread runs the pass every ``file_system_poll_wait_seconds`` and re-reads the
  config file every ``model_config_file_poll_wait_seconds``; ``reload_config`` replaces the
  whole config (models it omits are unloaded) and returns once new models are available;
  a config change is all or nothing: its labels are checked first, its new versions load
  hidden from requests, and only if every label then holds does it take effect (else the
  previous config stays, one log line says why);
- each version has a state (START, LOADING, AVAILABLE, UNLOADING, END) and an error status:
  a version that fails to load (after ``max_num_load_retries``) is END with its error while
  the others keep serving;
- requests take a servable with ``acquire`` and give it back with ``release``; an unload
  first removes the version from the serving map, then waits for in-flight requests.

The serving map is an immutable snapshot replaced on every change, so the request path
reads it without a lock. Model names from requests are only ever dictionary keys.

Where this differs from TF Serving (on purpose):

- Labels are checked after the config's versions have loaded, so labels on versions that
  load fine work at start-up without ``--allow_version_labels_for_unavailable_models``
  (TF Serving checks before its first loads finish and refuses them).
- Loads run one thread per version (TF Serving has ``num_load_threads``). ``start``
  returns once every initial version has loaded or failed (retries included), so the ports
  open after it, as TF Serving's do; but a missing or empty base path is logged and the
  server starts anyway (TF Serving keeps waiting for a first version), and a failed initial
  version stays END with its error (TF Serving exits).
- Two version dirs that parse to one number make that version an error (TF Serving warns
  and loads one of them).
- Versions that failed to load stay END with their error and are not retried on later
  polls unless their directory disappears and comes back (TF Serving alike).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

import tfsuite.protos  # noqa: F401

# isort: split
from tfsuite.server.errors import ServingError
from tfsuite.server.heap import release_after_unload, settle_after_load
from tfsuite.server.options import ServerOptions
from tfsuite.server.servable import Servable, configure_tensorflow_threads
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.model_config import (
    ModelConfig,
    ModelServerConfig,
    VersionDirs,
    read_model_config,
    validate_model_config,
    version_dirs,
)

__all__ = ["STATES", "ModelEntry", "ModelManager", "ServingMap", "VersionStatus"]

log = logging.getLogger(__name__)

#: TF Serving's ModelVersionStatus.State names, in lifecycle order.
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")

#: How long an unload waits for in-flight requests before dropping the version anyway.
UNLOAD_DRAIN_SECONDS = 60.0


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatus."""

    version: int
    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


@dataclass
class _VersionRecord:
    version: int
    path: Path
    state: str = "START"
    error: ServingError | None = None
    servable: Servable | None = None
    #: The directory vanished after a failed load: if it comes back, it is loaded again.
    gone: bool = False
    #: Loaded by a config change not committed yet: not handed out to requests.
    hidden: bool = False
    #: Set when the version is no longer wanted (or the server stops): ends a retry wait.
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ModelEntry:
    """A model's servable versions as the request path sees them (immutable)."""

    versions: dict[int, Servable]
    latest: Servable | None
    labels: dict[str, int]


ServingMap = dict[str, ModelEntry]

#: Hook run on a freshly loaded servable before it becomes AVAILABLE (warmup, batcher);
#: raising fails the load.
PrepareHook = Callable[[Servable], None]
#: Hook run after a servable is unloaded (detach its batcher).
UnloadHook = Callable[[Servable], None]


@dataclass
class _Model:
    config: ModelConfig
    records: dict[int, _VersionRecord] = field(default_factory=dict)
    active: bool = True  # False once a reload removed it from the config
    labels: dict[str, int] = field(default_factory=dict)  # applied labels (checked)
    duplicates_logged: set[str] = field(default_factory=set)  # each duplicate error once


def single_model_config(name: str, base_path: str) -> ModelServerConfig:
    """Single-model mode as TF Serving builds it: latest{1}, platform tensorflow."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = base_path
    model.model_platform = "tensorflow"
    return config


def _found(on_disk: VersionDirs) -> list[int]:
    """Every version number on disk, duplicated ones included (they are errors, not gaps)."""
    return sorted([*on_disk.paths, *on_disk.duplicates])


def aspired_versions(config: ModelConfig, on_disk: list[int]) -> list[int]:
    """Versions the policy wants from what is on disk (TF Serving's ServableVersionPolicy)."""
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return list(on_disk)
    if which == "specific":
        wanted = set(policy.specific.versions)
        return [v for v in on_disk if v in wanted]
    n = policy.latest.num_versions if which == "latest" and policy.latest.num_versions else 1
    return sorted(on_disk)[-n:] if on_disk else []


class ModelManager:
    """Loads, serves and unloads model versions (see the module docstring)."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        prepare: PrepareHook | None = None,
        on_unload: UnloadHook | None = None,
    ) -> None:
        self.options = options
        self._prepare = prepare
        self._on_unload = on_unload
        self._models: dict[str, _Model] = {}
        self._serving: ServingMap = {}
        # Guards _models / records / _serving swaps, held only for state changes (never
        # across a load, a retry wait or a drain); reentrant so wait_for predicates may call
        # status().
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        # One config change or reconcile pass at a time. Loads and their retry waits run on
        # loader threads without it; a config apply holds it while it waits for the loads it
        # needs (its own), never for other versions' retries.
        self._config_lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loaders: set[threading.Thread] = set()
        self._config_text: str | None = None
        self._config_failure: str | None = None
        self._tags = options.tags or ["serve"]

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Read the initial config, load every aspired version, then start polling."""
        configure_tensorflow_threads(*self.options.intra_inter_threads())
        config = self._initial_config()
        self._apply_config(config, initial=True)
        opts = self.options
        if opts.file_system_poll_wait_seconds > 0:
            self._spawn("tfsuite-fs-poll", self._fs_poll_loop)
        if opts.model_config_file and opts.model_config_file_poll_wait_seconds > 0:
            self._spawn("tfsuite-config-poll", self._config_poll_loop)

    def stop(self, drain_seconds: float = UNLOAD_DRAIN_SECONDS) -> None:
        """Stop polling and loading, unload everything (waiting up to ``drain_seconds`` per
        version for its in-flight requests)."""
        self._stop.set()
        with self._lock:
            for model in self._models.values():
                for rec in model.records.values():
                    rec.cancel.set()  # ends retry waits at once
            loaders = list(self._loaders)
        for thread in [*self._threads, *loaders]:
            thread.join()
        self._threads.clear()
        with self._config_lock:
            with self._lock:
                records = [
                    (m.config.name, r) for m in self._models.values() for r in m.records.values()
                ]
                unloads = [(name, r) for name, r in records if self._begin_unload(r)]
                self._publish()
            for name, rec in unloads:
                self._drain(name, rec, drain_seconds)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _initial_config(self) -> ModelServerConfig:
        opts = self.options
        if opts.model_config_file:
            config = read_model_config(opts.model_config_file)
            self._config_text = Path(opts.model_config_file).read_text()
            return config
        config = ModelServerConfig()
        if opts.model_base_path:
            config = single_model_config(opts.model_name, opts.model_base_path)
            validate_model_config(config)
        return config

    # -- polling ----------------------------------------------------------------------------
    def _fs_poll_loop(self) -> None:
        wait = self.options.file_system_poll_wait_seconds
        while not self._stop.wait(wait):
            # A config change in progress reconciles when it is done: skip this round rather
            # than queue behind it.
            if not self._config_lock.acquire(blocking=False):
                continue
            try:
                self._reconcile_all()
            except Exception:  # keep polling; the pass logs per-version errors itself
                log.exception("file system poll failed")
            finally:
                self._config_lock.release()

    def _config_poll_loop(self) -> None:
        wait = self.options.model_config_file_poll_wait_seconds
        path = Path(self.options.model_config_file)
        while not self._stop.wait(wait):
            try:
                text = path.read_text()
            except OSError as err:
                self._config_not_applied(path, f"cannot read it: {err}")
                continue
            if text == self._config_text:
                continue
            log.debug("model config file %s changed: applying it", path)
            try:
                self.reload_config(read_model_config(path))
            except (ConfigError, ServingError) as err:
                self._config_not_applied(path, str(err))
                continue
            self._config_text = text
            self._config_failure = None
            log.info("model config file %s applied", path)

    def _config_not_applied(self, path: Path, reason: str) -> None:
        """One log line per distinct failure, not one per poll."""
        if reason != self._config_failure:
            self._config_failure = reason
            log.error(
                "model config file %s not applied (the previous config stays in force; "
                "retried on every poll): %s",
                path,
                reason,
            )

    def poll_now(self) -> None:
        """One reconcile pass over every active model (what each file-system poll does);
        returns once no load of an active model is in progress, its own or one a loader
        thread's settle pass started meanwhile (the poll thread does not wait)."""
        with self._config_lock:
            self._reconcile_all()
            with self._lock:
                pending = [
                    r
                    for m in self._models.values()
                    if m.active
                    for r in m.records.values()
                    if r.state in ("START", "LOADING")
                ]
        self._wait_settled(pending)

    def _reconcile_all(self) -> list[_VersionRecord]:
        """Reconcile every active model (caller holds ``_config_lock``); the loads started."""
        with self._lock:
            models = [m for m in self._models.values() if m.active]
        started = [rec for model in models for rec in self._reconcile_model(model)]
        with self._lock:
            self._publish()
        return started

    # -- config -----------------------------------------------------------------------------
    def reload_config(self, config: ModelServerConfig) -> None:
        """Replace the whole model config; returns once the new models' versions are loaded.

        All or nothing: raises ServingError INVALID_ARGUMENT for an invalid config and
        FAILED_PRECONDITION for a version label the config cannot honour, and then nothing
        has changed. An empty config (no ``model_config_list``) changes nothing either, as
        TF Serving's ServerCore::ReloadConfig.
        """
        try:
            validate_model_config(config)
        except ConfigError as err:
            raise ServingError.invalid_argument(str(err)) from None
        which = config.WhichOneof("config")
        if which is None:
            log.info("Taking no action for empty config.")
            return
        if which != "model_config_list":
            raise ServingError.invalid_argument("Only model_config_list is supported")
        self._apply_config(config, initial=False)

    def _apply_config(self, config: ModelServerConfig, *, initial: bool) -> None:
        """Apply ``config`` as one change (see ``reload_config``).

        1. list every base path and check the labels against what the config will serve;
        2. load the versions the config adds, hidden from requests (new models, and models
           moved to another base path, are staged outside the serving map);
        3. wait for those loads, then check the labels that need available versions;
        4. commit: swap the staged models in, apply the labels, unload what the config no
           longer serves (an old version only once a newer aspired one is AVAILABLE).
        A failure in 1 or 3 leaves the old config in force and unloads what step 2 loaded.
        """
        wanted = {m.name: m for m in config.model_config_list.config}
        with self._config_lock:
            listings = {name: self._list_versions(cfg) for name, cfg in wanted.items()}
            aspired = {
                name: aspired_versions(cfg, _found(listings[name])) for name, cfg in wanted.items()
            }
            with self._lock:
                self._check_labels(wanted, aspired, loaded=False)
                staged, tentative = self._stage(wanted, listings, aspired)
            self._wait_settled(
                [*tentative, *(r for m in staged.values() for r in m.records.values())]
            )
            with self._lock:
                try:
                    labels = self._check_labels(wanted, aspired, loaded=True, staged=staged)
                except ServingError as err:  # the caller reports it (once)
                    unloads = self._rollback(staged, tentative)
                    failure: ServingError | None = err
                else:
                    unloads = self._commit(wanted, staged, labels)
                    failure = None
                self._publish()
            for name, rec in unloads:
                self._drain(name, rec, UNLOAD_DRAIN_SECONDS)
            self._reconcile_all()  # availability-preserving unloads under the config in force
            if failure is not None:
                raise failure
        for name in staged:  # new models, and models moved to another base path
            log.info("model %s: serving from %s", name, wanted[name].base_path)
        if not initial:
            log.info("model config applied: %s", ", ".join(sorted(wanted)) or "no models")

    def _stage(
        self,
        wanted: dict[str, ModelConfig],
        listings: dict[str, VersionDirs],
        aspired: dict[str, list[int]],
    ) -> tuple[dict[str, _Model], list[_VersionRecord]]:
        """Start the loads ``wanted`` adds (under the lock). New or moved models are staged
        outside ``_models``; versions an existing model gains load hidden until the commit."""
        staged: dict[str, _Model] = {}
        tentative: list[_VersionRecord] = []
        for name, cfg in wanted.items():
            copy = ModelConfig()
            copy.CopyFrom(cfg)
            model = self._models.get(name)
            if model is None or not model.active or model.config.base_path != cfg.base_path:
                model = staged[name] = _Model(copy)
                self._start_loads(model, copy, listings[name], aspired[name], hidden=True)
            else:
                tentative += self._start_loads(
                    model, copy, listings[name], aspired[name], hidden=True
                )
        return staged, tentative

    def _commit(
        self,
        wanted: dict[str, ModelConfig],
        staged: dict[str, _Model],
        labels: dict[str, dict[str, int]],
    ) -> list[tuple[str, _VersionRecord]]:
        """Make the new config the one in force (under the lock); the unloads to drain."""
        unloads: list[tuple[str, _VersionRecord]] = []
        for name, model in list(self._models.items()):
            if not model.active or (name in wanted and name not in staged):
                continue
            # Removed from the config, or replaced by a staged model on another base path.
            model.active = False  # kept (inactive) so GetModelStatus shows the unload
            for rec in model.records.values():
                rec.cancel.set()
                if self._begin_unload(rec):
                    unloads.append((name, rec))
        for name, cfg in wanted.items():
            model = staged.get(name) or self._models[name]
            copy = ModelConfig()
            copy.CopyFrom(cfg)
            model.config = copy
            model.labels = labels.get(name, {})
            for rec in model.records.values():
                rec.hidden = False
            self._models[name] = model
        return unloads

    def _rollback(
        self, staged: dict[str, _Model], tentative: list[_VersionRecord]
    ) -> list[tuple[str, _VersionRecord]]:
        """Undo ``_stage`` (under the lock): cancel and unload what it started."""
        unloads: list[tuple[str, _VersionRecord]] = []
        for name, model in staged.items():
            for rec in model.records.values():
                rec.cancel.set()
                if self._begin_unload(rec):
                    unloads.append((name, rec))
        for model in self._models.values():
            for version, rec in list(model.records.items()):
                if not any(rec is t for t in tentative):
                    continue
                rec.hidden = False
                if rec.state == "END" and rec.error is not None:
                    # Kept with its error (GetModelStatus says why the change failed), and,
                    # like any failed version, not loaded again until its dir is replaced:
                    # a config poll retrying the change does not reload it every time.
                    continue
                rec.cancel.set()
                if self._begin_unload(rec):
                    unloads.append((model.config.name, rec))
                else:
                    del model.records[version]
        return unloads

    def _check_labels(
        self,
        wanted: dict[str, ModelConfig],
        aspired: dict[str, list[int]],
        *,
        loaded: bool,
        staged: dict[str, _Model] | None = None,
    ) -> dict[str, dict[str, int]]:
        """The labels of ``wanted`` (ServerCore::UpdateModelVersionLabelMap), checked.

        A label must point to a version the config serves that is AVAILABLE (``loaded``:
        after the config's own loads; before them only "served by the config" is checked);
        with ``allow_version_labels_for_unavailable_models`` a new (or unchanged) label may
        point anywhere, but moving an existing label still needs an available version.
        FAILED_PRECONDITION otherwise.
        """
        allow = self.options.allow_version_labels_for_unavailable_models
        labels: dict[str, dict[str, int]] = {}
        for name, cfg in wanted.items():
            current = self._models.get(name)
            model = (staged or {}).get(name) or current
            old_labels = current.labels if current is not None and current.active else {}
            for label, version in cfg.version_labels.items():
                old = old_labels.get(label)
                if allow and (old is None or old == version):
                    continue
                unavailable = (
                    f"Request to assign label to version {version} of model {name}, which "
                    "is not currently available for inference"
                )
                if version not in aspired[name]:
                    raise ServingError.failed_precondition(
                        f"{unavailable} (label {label}: the new config does not serve that "
                        "version: not in its version policy, or not on disk)"
                    )
                rec = model.records.get(version) if model is not None else None
                if loaded and (rec is None or rec.state != "AVAILABLE"):
                    raise ServingError.failed_precondition(f"{unavailable} (label {label})")
            labels[name] = dict(cfg.version_labels)
        return labels

    def _wait_settled(self, records: Iterable[_VersionRecord]) -> None:
        """Block (without the lock) until none of ``records`` is loading any more."""
        pending = list(records)
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._stop.is_set() or all(r.state not in ("START", "LOADING") for r in pending)
                )
            )

    # -- reconcile one model ----------------------------------------------------------------
    def _list_versions(self, cfg: ModelConfig) -> VersionDirs:
        base = Path(cfg.base_path)
        if not base.is_dir():
            log.warning("Could not find base path %s for servable %s", base, cfg.name)
            return VersionDirs()
        on_disk = version_dirs(base)
        if not on_disk.paths and not on_disk.duplicates:
            log.warning(
                "No versions of servable %s found under base path %s. Did you forget to "
                "name your leaf directory as a number (eg. '/1/')?",
                cfg.name,
                base,
            )
        return on_disk

    def _reconcile_model(self, model: _Model) -> list[_VersionRecord]:
        """Start loading what the model's policy aspires to, unload what it no longer does
        (caller holds ``_config_lock``); the loads started."""
        cfg = model.config
        on_disk = self._list_versions(cfg)
        aspired = aspired_versions(cfg, _found(on_disk))
        with self._lock:
            if not model.active:
                return []
            started = self._start_loads(model, cfg, on_disk, aspired, hidden=False)
            for version, rec in model.records.items():
                if version not in on_disk.paths and rec.error is not None:
                    rec.gone = True
            unloads = [
                rec for rec in self._unaspired_to_unload(model, aspired) if self._begin_unload(rec)
            ]
            self._publish()
        for rec in unloads:
            self._drain(cfg.name, rec, UNLOAD_DRAIN_SECONDS)
        return started

    @staticmethod
    def _unaspired_to_unload(model: _Model, aspired: list[int]) -> list[_VersionRecord]:
        """TF Serving's AvailabilityPreservingPolicy: a loaded version the policy no longer
        wants is unloaded only when no version is aspired, or an aspired one is AVAILABLE, or
        more than one such version is loaded (the lowest go first, one stays). So a newer
        version that fails to load never takes the model dark."""
        serving = [r for r in model.records.values() if r.state == "AVAILABLE" and not r.hidden]
        unaspired = sorted(
            (r for r in serving if r.version not in aspired), key=lambda r: r.version
        )
        aspired_serving = any(r.version in aspired for r in serving)
        if not aspired or aspired_serving:
            return unaspired
        return unaspired[:-1]

    def _start_loads(
        self,
        model: _Model,
        cfg: ModelConfig,
        on_disk: VersionDirs,
        aspired: list[int],
        *,
        hidden: bool,
    ) -> list[_VersionRecord]:
        """Start a loader thread for each aspired version not loaded yet (under the lock);
        the new records."""
        started: list[_VersionRecord] = []
        for version in sorted(aspired, reverse=True):  # newest first: it serves "latest"
            rec = model.records.get(version)
            if version in on_disk.duplicates:
                self._refuse_duplicate(model, version, on_disk, rec)
                continue
            if rec is None or (rec.state == "END" and (rec.error is None or rec.gone)):
                rec = _VersionRecord(version, on_disk.paths[version], state="LOADING")
                rec.hidden = hidden
                model.records[version] = rec
                started.append(rec)
                thread = threading.Thread(
                    target=self._load_then_settle,
                    args=(model, cfg.name, rec),
                    name=f"tfsuite-load-{cfg.name}-{version}",
                    daemon=True,
                )
                self._loaders.add(thread)
                thread.start()
        if started:
            self._changed.notify_all()
        return started

    def _refuse_duplicate(
        self, model: _Model, version: int, on_disk: VersionDirs, rec: _VersionRecord | None
    ) -> None:
        """Two dirs parse to one version: that version is an error (logged once per change)."""
        message = on_disk.duplicate_message(version)
        if message not in model.duplicates_logged:
            model.duplicates_logged.add(message)
            log.error("Servable {name: %s version: %d}: %s", model.config.name, version, message)
        if rec is not None and rec.state in ("LOADING", "AVAILABLE"):
            return  # keeps serving from the dir it loaded; nothing new loads until one is left
        if rec is not None and rec.error is not None and rec.error.message == message:
            return
        record = _VersionRecord(version, on_disk.duplicates[version][0], state="END")
        record.error = ServingError.failed_precondition(message)
        record.gone = True  # loaded again once only one dir is left
        with self._lock:
            model.records[version] = record
            self._changed.notify_all()

    def _load_then_settle(self, model: _Model, name: str, rec: _VersionRecord) -> None:
        """A loader thread: load one version (with its retries), then let the policy unload
        what the new version replaces."""
        try:
            self._load(name, rec)
            if rec.state == "AVAILABLE" and not self._stop.is_set():
                with self._config_lock:  # after any config change in progress
                    if model.active and not rec.hidden:
                        self._reconcile_model(model)
        except Exception:  # a bug: the version's state says what happened, keep the server
            log.exception("loading %s version %d failed", name, rec.version)
        finally:
            with self._lock:
                self._loaders.discard(threading.current_thread())

    def _load(self, name: str, rec: _VersionRecord) -> None:
        """Load ``rec`` with up to ``max_num_load_retries`` retries (no lock held: the retry
        wait ends early when the version is no longer wanted or the server stops)."""
        opts = self.options
        log.info(
            "Loading servable version {name: %s version: %d} from %s", name, rec.version, rec.path
        )
        attempts = 1 + max(0, opts.max_num_load_retries)
        for attempt in range(attempts):
            try:
                servable = Servable.load(name, rec.version, rec.path, self._tags)
                if self._prepare is not None:
                    self._prepare(servable)
            except Exception as err:
                if isinstance(err, ServingError):
                    error = err
                elif isinstance(err, ConfigError):  # e.g. a bad batching_params.pbtxt
                    error = ServingError.invalid_argument(str(err))
                else:
                    error = ServingError(grpc.StatusCode.UNKNOWN, f"{type(err).__name__}: {err}")
                left = attempts - attempt - 1
                log.error(
                    "Loading servable {name: %s version: %d} failed: %s%s",
                    name,
                    rec.version,
                    error.message,
                    f" (retrying {left} more time(s))" if left else "",
                )
                if left and not rec.cancel.wait(opts.load_retry_interval_micros / 1e6):
                    continue
                with self._lock:
                    rec.error = error
                    rec.state = "END"
                    self._changed.notify_all()
                return
            settle_after_load()  # before requests arrive: the collection pauses everything
            with self._lock:  # AVAILABLE in the status only once requests can reach it
                cancelled = rec.cancel.is_set()
                if not cancelled:
                    rec.servable = servable
                    rec.error = None
                    rec.state = "AVAILABLE"
                    self._publish()
            if cancelled:  # no longer wanted while it loaded: never served
                servable.close(0)
                if self._on_unload is not None:
                    self._on_unload(servable)
                with self._lock:
                    rec.state = "END"
                    self._changed.notify_all()
                return
            log.info(
                "Successfully loaded servable version {name: %s version: %d} in %.2f s",
                name,
                rec.version,
                servable.load_seconds,
            )
            return

    def _begin_unload(self, rec: _VersionRecord) -> bool:
        """Mark an AVAILABLE version UNLOADING (under the lock; the caller publishes, so no
        new request reaches it); False if it is not AVAILABLE."""
        if rec.state != "AVAILABLE":
            return False
        rec.state = "UNLOADING"
        return True

    def _drain(self, name: str, rec: _VersionRecord, drain_seconds: float) -> None:
        """Finish an unload begun by ``_begin_unload``: wait for in-flight requests (no lock
        held), release the servable, END."""
        servable = rec.servable
        if servable is not None:
            start = time.perf_counter()
            if not servable.close(drain_seconds):
                log.warning(
                    "unloading %s version %d with requests still running", name, rec.version
                )
            if self._on_unload is not None:
                self._on_unload(servable)
            log.info(
                "Unloaded servable version {name: %s version: %d} (drained in %.3f s)",
                name,
                rec.version,
                time.perf_counter() - start,
            )
        with self._lock:
            rec.servable = None
            rec.state = "END"
            self._changed.notify_all()
        if servable is not None:
            del servable  # the last reference: the collection below can free the model
            release_after_unload()

    def _publish(self) -> None:
        """Rebuild the immutable serving map from the records."""
        with self._lock:
            serving: ServingMap = {}
            for name, model in self._models.items():
                if not model.active:
                    continue
                versions = {
                    v: r.servable
                    for v, r in model.records.items()
                    if r.state == "AVAILABLE" and r.servable is not None and not r.hidden
                }
                latest = versions[max(versions)] if versions else None
                serving[name] = ModelEntry(versions, latest, dict(model.labels))
            self._serving = serving
            self._changed.notify_all()

    # -- request path -----------------------------------------------------------------------
    def acquire(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request addresses, counted as in flight: call ``release`` after.

        Errors are TF Serving's: no name (INVALID_ARGUMENT), unknown label
        (INVALID_ARGUMENT), unknown model/version (NOT_FOUND).
        """
        if not name:
            raise ServingError.no_model_name()
        for _ in range(3):  # a version may start unloading between lookup and acquire
            entry = self._serving.get(name)
            if label:
                if entry is None or label not in entry.labels:
                    raise ServingError.unknown_label(label)
                version = entry.labels[label]
            if version is None:
                servable = entry.latest if entry is not None else None
            else:
                servable = entry.versions.get(version) if entry is not None else None
            if servable is None:
                raise ServingError.servable_not_found(name, version)
            if servable.acquire():
                return servable
        raise ServingError.servable_not_found(name, version)

    @staticmethod
    def release(servable: Servable) -> None:
        servable.release()

    @contextmanager
    def acquired(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> Iterator[Servable]:
        """``acquire`` ... ``release`` as a ``with`` block."""
        servable = self.acquire(name, version, label)
        try:
            yield servable
        finally:
            servable.release()

    # -- status -----------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return sorted(self._serving)

    def serves(self, name: str) -> bool:
        """Whether ``name`` is a model of the current config (loaded versions or not)."""
        return name in self._serving

    def serving_map(self) -> ServingMap:
        return self._serving

    def status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """GetModelStatus rows (newest first), TF Serving's errors for unknown model/version.

        Like TF Serving, an empty name is just an unknown model; a label (which TF Serving's
        GetModelStatus ignores) narrows the answer to the labelled version here.
        """
        with self._lock:
            model = self._models.get(name)
            if label:
                labels = model.labels if model is not None else {}
                if label not in labels:
                    raise ServingError.unknown_label(label)
                version = labels[label]
            if model is None or not model.records:
                raise ServingError.model_not_found(name)
            if version is not None:
                rec = model.records.get(version)
                if rec is None:
                    raise ServingError.version_not_found(name, version)
                recs = [rec]
            else:
                recs = [model.records[v] for v in sorted(model.records, reverse=True)]
            return [
                VersionStatus(
                    r.version,
                    r.state,
                    r.error.code if r.error else grpc.StatusCode.OK,
                    r.error.message if r.error else "",
                )
                for r in recs
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds after some state change (or ``timeout``)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)
