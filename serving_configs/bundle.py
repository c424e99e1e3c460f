"""The set of config files one TF Serving deployment reads, built and written together.

``models.config`` (``--model_config_file``), ``batching_parameters.txt``
(``--batching_parameters_file``) and ``monitoring.config`` (``--monitoring_config_file``): the
names ``compose/tfserving-*.yml`` mounts. Everything is built and validated before the first
file is written, so a mistake leaves the output directory as it was.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message

from tfsuite.serving_configs.batching import (
    BatchingOptions,
    BatchingParameters,
    parse_batching_parameters,
    read_batching_parameters,
    write_batching_parameters,
)
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.model_config import (
    ModelServerConfig,
    Policy,
    model_config_for,
    model_server_config,
    read_manifest,
    read_model_config,
    write_model_config,
)
from tfsuite.serving_configs.monitoring import (
    DEFAULT_METRICS_PATH,
    monitoring_config,
    read_monitoring_config,
    write_monitoring_config,
)

__all__ = [
    "BATCHING_FILE",
    "MODEL_CONFIG_FILE",
    "MONITORING_FILE",
    "ConfigBundle",
    "ModelSource",
    "container_path",
]

MODEL_CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring.config"


@dataclass(frozen=True)
class ModelSource:
    """One model to serve: a local tfsuite base path and the name to serve it under."""

    base_path: Path
    """Local directory holding ``<version>/`` SavedModels (and usually ``variants.json``)."""

    name: str | None = None
    """Served model name; default: variants.json's model_name, else the directory name."""


def container_path(base_path: Path, out_dir: Path, container_root: str) -> str:
    """Where a container that mounts ``out_dir`` at ``container_root`` sees ``base_path``."""
    if not container_root.startswith("/"):
        raise ConfigError(f"--container-root must be an absolute path; got {container_root!r}")
    base, out = base_path.resolve(), out_dir.resolve()
    try:
        rel = base.relative_to(out)
    except ValueError:
        raise ConfigError(
            f"base path {base} is not inside the output directory {out}; the container only "
            f"sees {out} (mounted at {container_root}): put the model under it or drop "
            "--container-root"
        ) from None
    return posixpath.join(container_root, *rel.parts)


@dataclass
class ConfigBundle:
    """The three messages, validated; :meth:`write` puts them into a directory."""

    model_config: ModelServerConfig
    batching: Message = field(default_factory=BatchingParameters)
    monitoring: Message = field(default_factory=monitoring_config)

    @classmethod
    def build(
        cls,
        models: Sequence[ModelSource],
        *,
        out_dir: Path,
        policy: Policy = "specific",
        batching: Message | BatchingOptions | None = None,
        metrics_path: str = DEFAULT_METRICS_PATH,
        container_root: str | None = None,
    ) -> ConfigBundle:
        """Build every file's message from the models' base paths (reading ``variants.json``)."""
        if not models:
            raise ConfigError("no models given; pass at least one --base-path")
        entries = []
        for source in models:
            local = Path(source.base_path).expanduser()
            if not local.is_dir():
                raise ConfigError(
                    f"base path {local} is not a directory; export a model there first"
                )
            manifest = read_manifest(local)
            name = source.name or (manifest.model_name if manifest else local.resolve().name)
            written = (
                container_path(local, out_dir, container_root)
                if container_root
                else str(local.resolve())
            )
            entries.append(model_config_for(name, written, manifest, policy, local_path=local))
        if batching is None:
            batching_msg = BatchingParameters()
        elif isinstance(batching, BatchingOptions):
            batching_msg = batching.to_proto()
        else:
            batching_msg = batching
        # Round-trip through the parser: the same checks as reading the file back.
        parse_batching_parameters(text_format.MessageToString(batching_msg), source=BATCHING_FILE)
        return cls(
            model_config=model_server_config(entries),
            batching=batching_msg,
            monitoring=monitoring_config(path=metrics_path),
        )

    @classmethod
    def read(cls, config_dir: str | os.PathLike[str]) -> ConfigBundle:
        """Read and validate the three files back from ``config_dir``."""
        d = Path(config_dir)
        return cls(
            model_config=read_model_config(d / MODEL_CONFIG_FILE),
            batching=read_batching_parameters(d / BATCHING_FILE),
            monitoring=read_monitoring_config(d / MONITORING_FILE),
        )

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the three files (each atomically); returns file kind -> path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return {
            "model_config": write_model_config(out / MODEL_CONFIG_FILE, self.model_config),
            "batching": write_batching_parameters(out / BATCHING_FILE, self.batching),
            "monitoring": write_monitoring_config(out / MONITORING_FILE, self.monitoring),
        }
