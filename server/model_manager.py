"""``ModelManager``: which model versions are loaded, and handing them out to requests.

What TF Serving's ServerCore + AspiredVersionsManager + FileSystemStoragePathSource do,
in one object:

- models come from ``--model_config_file`` (``model_config_list``) or single-model mode
  (``--model_name`` / ``--model_base_path``); each has a version policy (latest{N} / all /
  specific) and version labels;
- a *reconcile pass* lists each base path (version dir names are parsed as TF Serving's
  ``absl::SimpleAtoi`` parses them, so ``00000123`` is version 123; anything else is
  ignored; two dirs parsing to one version make that version an error), loads aspired versions that are not loaded and unloads loaded
  ones that are no longer aspired — new versions first, then unloads, so a model never
  goes dark while its newest version is replaced;
- a poll thread runs the pass every ``file_system_poll_wait_seconds`` and re-reads the
  config file every ``model_config_file_poll_wait_seconds``; ``reload_config`` replaces the
  whole config (models it omits are unloaded) and returns once new models are available;
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
- Loads (and their retry waits) run one at a time on the reconcile thread; TF Serving has
  ``num_load_threads``. A missing base path or an empty one is logged and the server
  starts anyway (TF Serving keeps waiting for a first version).
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
        # Guards _models / records / _serving swaps; reentrant so wait_for predicates may
        # call status().
        self._lock = threading.RLock()
        self._reconcile_lock = threading.RLock()  # one reconcile pass (loads/unloads) at a time
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._config_text: str | None = None
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
        """Stop polling and unload everything (waiting up to ``drain_seconds`` per version)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        with self._reconcile_lock:
            with self._lock:
                records = [
                    (m.config.name, r) for m in self._models.values() for r in m.records.values()
                ]
            for name, rec in records:
                if rec.state == "AVAILABLE":
                    self._unload(name, rec, drain_seconds)

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
            try:
                self.poll_now()
            except Exception:  # keep polling; the pass logs per-version errors itself
                log.exception("file system poll failed")

    def _config_poll_loop(self) -> None:
        wait = self.options.model_config_file_poll_wait_seconds
        path = Path(self.options.model_config_file)
        while not self._stop.wait(wait):
            try:
                text = path.read_text()
            except OSError as err:
                log.error("cannot read model config file %s: %s", path, err)
                continue
            if text == self._config_text:
                continue
            try:
                self.reload_config(read_model_config(path))
                self._config_text = text
            except (ConfigError, ServingError) as err:
                log.error("model config file %s not applied: %s", path, err)

    def poll_now(self) -> None:
        """One reconcile pass over every active model (what each file-system poll does)."""
        with self._reconcile_lock:
            with self._lock:
                models = [m for m in self._models.values() if m.active]
            for model in models:
                self._reconcile_model(model)
            self._publish()

    # -- config -----------------------------------------------------------------------------
    def reload_config(self, config: ModelServerConfig) -> None:
        """Replace the whole model config; returns once the new models' versions are loaded.

        Raises ServingError INVALID_ARGUMENT for an invalid config and FAILED_PRECONDITION
        for a version label on a version that is not available.
        """
        try:
            validate_model_config(config)
        except ConfigError as err:
            raise ServingError.invalid_argument(str(err)) from None
        which = config.WhichOneof("config")
        if which is None:  # ServerCore::ReloadConfig: an empty config changes nothing
            log.info("Taking no action for empty config.")
            return
        if which != "model_config_list":
            raise ServingError.invalid_argument("Only model_config_list is supported")
        self._apply_config(config, initial=False)

    def _apply_config(self, config: ModelServerConfig, *, initial: bool) -> None:
        wanted = {m.name: m for m in config.model_config_list.config}
        with self._reconcile_lock:
            to_unload: list[tuple[str, _VersionRecord]] = []
            with self._lock:
                for name, model in self._models.items():
                    new = wanted.get(name)
                    if new is None or new.base_path != model.config.base_path:
                        # Removed, or moved to another base path: its versions all go.
                        to_unload += [(name, r) for r in model.records.values()]
                        model.active = False
                for name, cfg in wanted.items():
                    model = self._models.get(name)
                    copy = ModelConfig()
                    copy.CopyFrom(cfg)
                    if model is None or not model.active:
                        self._models[name] = _Model(copy)
                    else:
                        model.config = copy
            for name, cfg in wanted.items():
                self._reconcile_model(self._models[name])
            for name, rec in to_unload:
                if rec.state == "AVAILABLE":
                    self._unload(name, rec, UNLOAD_DRAIN_SECONDS)
            try:
                self._update_labels(wanted.values())
            finally:
                self._publish()
        if initial:
            for name, cfg in wanted.items():
                log.info("model %s: serving from %s", name, cfg.base_path)

    def _update_labels(self, configs: Iterable[ModelConfig]) -> None:
        """Apply the configs' version labels (ServerCore::UpdateModelVersionLabelMap).

        A label must point to an AVAILABLE version; with
        ``allow_version_labels_for_unavailable_models`` a new (or unchanged) label may point
        anywhere, but moving an existing label still needs an available version. On failure
        no label changes (FAILED_PRECONDITION).
        """
        allow = self.options.allow_version_labels_for_unavailable_models
        new_labels: dict[str, dict[str, int]] = {}
        with self._lock:
            for cfg in configs:
                model = self._models[cfg.name]
                for label, version in cfg.version_labels.items():
                    old = model.labels.get(label)
                    may_be_unavailable = allow and (old is None or old == version)
                    rec = model.records.get(version)
                    if not may_be_unavailable and (rec is None or rec.state != "AVAILABLE"):
                        raise ServingError.failed_precondition(
                            f"Request to assign label to version {version} of model "
                            f"{cfg.name}, which is not currently available for inference"
                        )
                new_labels[cfg.name] = dict(cfg.version_labels)
            for name, labels in new_labels.items():
                self._models[name].labels = labels

    # -- reconcile one model ----------------------------------------------------------------
    def _reconcile_model(self, model: _Model) -> None:
        cfg = model.config
        base = Path(cfg.base_path)
        if not base.is_dir():
            log.warning("Could not find base path %s for servable %s", base, cfg.name)
            on_disk = VersionDirs()
        else:
            on_disk = version_dirs(base)
            if not on_disk.paths and not on_disk.duplicates:
                log.warning(
                    "No versions of servable %s found under base path %s. Did you forget to "
                    "name your leaf directory as a number (eg. '/1/')?",
                    cfg.name,
                    base,
                )
        found = sorted([*on_disk.paths, *on_disk.duplicates])
        aspired = aspired_versions(cfg, found)
        for version in sorted(aspired, reverse=True):  # newest first: it serves "latest"
            rec = model.records.get(version)
            if version in on_disk.duplicates:
                self._refuse_duplicate(model, version, on_disk, rec)
                continue
            if rec is None or (rec.state == "END" and (rec.error is None or rec.gone)):
                rec = _VersionRecord(version, on_disk.paths[version])
                with self._lock:
                    model.records[version] = rec
                self._load(cfg.name, rec)
                self._publish()
        for version, rec in sorted(model.records.items()):
            if version not in on_disk.paths and rec.error is not None:
                rec.gone = True
            if version not in aspired and rec.state == "AVAILABLE":
                self._unload(cfg.name, rec, UNLOAD_DRAIN_SECONDS)
                self._publish()

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

    def _set_state(self, rec: _VersionRecord, state: str) -> None:
        with self._lock:
            rec.state = state
            self._changed.notify_all()

    def _load(self, name: str, rec: _VersionRecord) -> None:
        opts = self.options
        self._set_state(rec, "LOADING")
        log.info(
            "Loading servable version {name: %s version: %d} from %s", name, rec.version, rec.path
        )
        attempts = 1 + max(0, opts.max_num_load_retries)
        for attempt in range(attempts):
            try:
                servable = Servable.load(name, rec.version, rec.path, self._tags)
                if self._prepare is not None:
                    self._prepare(servable)
            except Exception as err:  # noqa: BLE001 - any failure is this version's status
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
                if left and not self._stop.wait(opts.load_retry_interval_micros / 1e6):
                    continue
                with self._lock:
                    rec.error = error
                    rec.state = "END"
                    self._changed.notify_all()
                return
            with self._lock:  # AVAILABLE in the status only once requests can reach it
                rec.servable = servable
                rec.error = None
                rec.state = "AVAILABLE"
                self._publish()
            settle_after_load()
            log.info(
                "Successfully loaded servable version {name: %s version: %d} in %.2f s",
                name,
                rec.version,
                servable.load_seconds,
            )
            return

    def _unload(self, name: str, rec: _VersionRecord, drain_seconds: float) -> None:
        servable = rec.servable
        with self._lock:  # state and serving map change together (observers see both)
            rec.state = "UNLOADING"
            self._publish()  # stop handing the version out before waiting for in-flight ones
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
                    if r.state == "AVAILABLE" and r.servable is not None
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
