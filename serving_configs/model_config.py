"""``--model_config_file``: TF Serving's ``ModelServerConfig`` text proto.

Parsed with the real ``tensorflow_serving.config.model_server_config_pb2`` and validated the
way ``tensorflow_model_server`` validates it (``ServerCore::ValidateModelConfigList``,
``GetPlatform``, ``CreateStoragePathRoutes``), with TF Serving's wording. Checks that need the
running server's state (a label on a version that is not loaded) belong to the server.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tfsuite.protos  # noqa: F401  - registers tensorflow.core protos without importing TF

# isort: split
from tensorflow_serving.config import model_server_config_pb2

from tfsuite.export.manifest import VariantsManifest
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.textproto import parse_text_proto, read_text_proto, write_text_proto

__all__ = [
    "TENSORFLOW_PLATFORM",
    "ModelConfig",
    "ModelServerConfig",
    "Policy",
    "VersionDirs",
    "model_config_for",
    "model_server_config",
    "parse_model_config",
    "parse_version_dir",
    "read_manifest",
    "read_model_config",
    "validate_model_config",
    "version_dirs",
    "write_model_config",
]

log = logging.getLogger(__name__)

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig
Policy = Literal["specific", "latest", "all"]

#: The only platform the suite (and a stock tensorflow_model_server) serves.
TENSORFLOW_PLATFORM = "tensorflow"

# TF Serving's g3doc: a version label is "a sequence of Word characters".
_LABEL = re.compile(r"[a-zA-Z0-9_]+")
# tensorflow::io::ParseURI: scheme = [a-zA-Z][0-9a-zA-Z.]* followed by "://".
_URI = re.compile(r"[a-zA-Z][0-9a-zA-Z.]*://")
# A model name ends up in REST paths (/v1/models/NAME) and in log/metric labels.
_BAD_NAME = re.compile(r"[/:\s]")


def parse_model_config(text: str, *, source: str = "<text>") -> ModelServerConfig:
    """Parse and validate a text-format ``ModelServerConfig``."""
    return parse_text_proto(text, ModelServerConfig(), source, validate_model_config)


def read_model_config(path: str | os.PathLike[str]) -> ModelServerConfig:
    """Read and validate a ``--model_config_file``; ``ConfigError`` on any problem."""
    return read_text_proto(path, ModelServerConfig(), validate_model_config)


def write_model_config(path: str | os.PathLike[str], config: ModelServerConfig) -> Path:
    """Validate and write ``config`` atomically; returns the path."""
    return write_text_proto(path, config, validate_model_config)


def validate_model_config(config: ModelServerConfig) -> None:
    """Raise ``ConfigError`` where ``tensorflow_model_server`` would refuse the config."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ConfigError(
            "custom_model_config is not supported by the suite; use model_config_list"
        )
    names: set[str] = set()
    for model in config.model_config_list.config:
        if model.name in names:
            raise ConfigError(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
    for model in config.model_config_list.config:
        _check_model(model)


def _check_model(model: ModelConfig) -> None:
    name = model.name
    if not name:
        raise ConfigError('A model in model_config_list has no name; set name: "..."')
    if _BAD_NAME.search(name):
        raise ConfigError(
            f"Model name {name!r} contains '/', ':' or whitespace; REST paths "
            "/v1/models/<name> cannot address it"
        )
    if _is_relative(model.base_path):
        raise ConfigError(
            f"Expected model {name} to have an absolute path or URI; "
            f"got base_path()={model.base_path}"
        )
    platform = _platform(model)
    if platform != TENSORFLOW_PLATFORM:
        raise ConfigError(
            f"Model {name} requests unsupported platform {platform}; "
            f'only model_platform: "{TENSORFLOW_PLATFORM}" can be served'
        )
    policy = model.model_version_policy
    if policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 0:
        raise ConfigError(
            f"Model {name}: latest.num_versions must be >= 1; got {policy.latest.num_versions}"
        )
    for label, version in model.version_labels.items():
        if not _LABEL.fullmatch(label):
            raise ConfigError(
                f"Model {name}: version label {label!r} is invalid; labels are restricted to "
                "[a-zA-Z0-9_]+"
            )
        if version < 0:
            raise ConfigError(
                f"Model {name}: version label {label} points to version {version}; "
                "versions are non-negative integers"
            )


def _platform(model: ModelConfig) -> str:
    # Mirrors ServerCore GetPlatform: the deprecated model_type is still honoured.
    if model.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if model.model_platform:
            raise ConfigError(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if model.model_type == model_server_config_pb2.TENSORFLOW:
            return TENSORFLOW_PLATFORM
        raise ConfigError(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
    if not model.model_platform:
        raise ConfigError(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {model.name}"
        )
    return model.model_platform


def _is_relative(base_path: str) -> bool:
    return not (_URI.match(base_path) or base_path.startswith("/"))


# -- version dirs ----------------------------------------------------------------------------
_INT64_MAX = 2**63 - 1
# absl::SimpleAtoi / safe_strto64: optional ASCII whitespace around an optional sign and
# decimal digits. Negative numbers parse, but a negative version cannot be requested (the
# suite ignores such dirs).
_SIMPLE_ATOI = re.compile(r"[ \t\n\v\f\r]*\+?([0-9]+)[ \t\n\v\f\r]*")


def parse_version_dir(name: str) -> int | None:
    """The version a dir name stands for, as TF Serving parses it (``absl::SimpleAtoi``).

    ``"00000123"`` -> 123, ``"01"`` -> 1, ``"+7"`` -> 7; ``None`` for anything that is not a
    non-negative int64 (TF Serving ignores such entries).
    """
    match = _SIMPLE_ATOI.fullmatch(name)
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= _INT64_MAX else None


@dataclass(frozen=True)
class VersionDirs:
    """The version dirs under one base path, keyed by the version their name parses to."""

    #: version -> its directory (the real name on disk, e.g. ``00000123``), sorted by version
    paths: dict[int, Path] = field(default_factory=dict)
    #: versions that two or more dirs parse to (e.g. ``1`` and ``01``) -> those dirs, sorted;
    #: such a version is not loadable until only one dir remains
    duplicates: dict[int, tuple[Path, ...]] = field(default_factory=dict)

    @property
    def versions(self) -> list[int]:
        """Loadable version numbers (duplicated ones excluded), ascending."""
        return list(self.paths)

    def duplicate_message(self, version: int) -> str:
        """What is wrong with a duplicated version and how to fix it, in one line."""
        names = ", ".join(p.name for p in self.duplicates[version])
        return (
            f"Duplicate version directories detected: {names} all parse to version {version}; "
            "remove or rename all but one"
        )


def version_dirs(base_path: str | os.PathLike[str]) -> VersionDirs:
    """The version dirs under ``base_path`` as TF Serving's FileSystemStoragePathSource sees
    them: sub-directories whose name parses as a non-negative int64 (``parse_version_dir``).

    A version's path is the dir's real name (``base/00000123``), never ``base / str(version)``.
    Other entries are ignored, as TF Serving ignores them; a missing base path has none.
    """
    found: dict[int, list[Path]] = {}
    try:
        entries = sorted(Path(base_path).iterdir())
    except OSError:
        return VersionDirs()
    for entry in entries:
        version = parse_version_dir(entry.name)
        if version is not None and entry.is_dir():
            found.setdefault(version, []).append(entry)
    paths = {v: dirs[0] for v, dirs in sorted(found.items()) if len(dirs) == 1}
    duplicates = {v: tuple(dirs) for v, dirs in sorted(found.items()) if len(dirs) > 1}
    return VersionDirs(paths, duplicates)


def read_manifest(base_path: str | os.PathLike[str]) -> VariantsManifest | None:
    """``<base_path>/variants.json`` if present; ``ConfigError`` if it is not a valid one."""
    try:
        return VariantsManifest.load_if_exists(base_path)
    except ValueError as exc:  # bad JSON or schema (pydantic's ValidationError is a ValueError)
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"{VariantsManifest.path_in(base_path)} is not a valid variants.json ({detail}); "
            "re-run the export"
        ) from None


def model_config_for(
    name: str,
    base_path: str | os.PathLike[str],
    manifest: VariantsManifest | None = None,
    policy: Policy = "specific",
    *,
    local_path: str | os.PathLike[str] | None = None,
) -> ModelConfig:
    """One ``model_config_list`` entry for a tfsuite base path.

    ``base_path`` is written into the config (a local path is made absolute; a URI or a path
    as a container sees it is kept). ``manifest`` defaults to ``variants.json`` read from
    ``local_path`` (default: ``base_path``). Policies:

    - ``specific``: exactly the loadable versions (manifest ``status == "ok"``, else the
      integer dirs found), each labelled with its variant name;
    - ``latest``: TF Serving's default (newest version only), labelled if it is a variant;
    - ``all``: every version dir, all variants labelled.
    """
    written = os.fspath(base_path)
    if not _URI.match(written):
        written = str(Path(written).expanduser().absolute())
    local = Path(local_path) if local_path is not None else Path(os.fspath(base_path))
    if manifest is None and not _URI.match(os.fspath(local)):
        manifest = read_manifest(local)
    on_disk = version_dirs(local)  # empty for a URI or a path only a container sees
    for version in on_disk.duplicates:
        raise ConfigError(f"{local}: {on_disk.duplicate_message(version)}")

    if manifest is not None:
        labels = manifest.version_labels()
        versions = sorted(labels.values())
        if local.is_dir():
            # TF Serving would wait forever for a specific version that does not exist.
            for label, version in labels.items():
                if version not in on_disk.paths:
                    raise ConfigError(
                        f"variants.json lists version {version} ({label}) as ok but "
                        f"{local} has no directory for it; re-run the export"
                    )
    else:
        labels = {}
        versions = on_disk.versions
    if not versions and policy == "specific":
        raise ConfigError(
            f"{local}: no loadable versions (no variant with status ok in variants.json and no "
            "integer version directories); export the model first"
        )

    model = ModelConfig(name=name, base_path=written, model_platform=TENSORFLOW_PLATFORM)
    if policy == "specific":
        model.model_version_policy.specific.versions.extend(versions)
    elif policy == "latest":
        model.model_version_policy.latest.num_versions = 1
        # A label on a version that is not loaded makes TF Serving refuse the config.
        newest = max(on_disk.versions or versions, default=None)
        labels = {k: v for k, v in labels.items() if v == newest}
    elif policy == "all":
        model.model_version_policy.all.SetInParent()
    else:
        raise ConfigError(f"unknown version policy {policy!r}; use specific, latest or all")
    for label, version in sorted(labels.items(), key=lambda kv: kv[1]):
        if _LABEL.fullmatch(label):
            model.version_labels[label] = version
        else:
            log.warning(
                "variant %r of model %s gets no version label: labels are restricted to "
                "[a-zA-Z0-9_]+",
                label,
                name,
            )
    _check_model(model)
    return model


def model_server_config(models: Iterable[ModelConfig]) -> ModelServerConfig:
    """Combine entries into one validated ``ModelServerConfig`` (names must be unique)."""
    config = ModelServerConfig()
    config.model_config_list.config.extend(models)
    validate_model_config(config)
    return config
