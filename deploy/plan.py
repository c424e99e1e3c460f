"""What a config dir (written by ``tfsuite configs``) asks a serving container for.

The config dir is mounted read-only into every container, and the model server's flags
name the files in it, so TF Serving reads exactly the files on the host. Base paths in
``models.config`` are absolute; they are seen by the container in one of two ways:

- written with ``--container-root /models`` (the compose layout): the dir is mounted at
  ``/models`` and ``/models/NAME`` is ``CONFIG_DIR/NAME``;
- written as host paths inside the config dir: the dir is mounted at its own host path,
  so those paths are valid inside the container too.

A base path outside the config dir would not exist in the container: refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tfsuite.deploy.errors import DeployError
from tfsuite.serving_configs.bundle import BATCHING_FILE, MODEL_CONFIG_FILE, MONITORING_FILE
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.model_config import read_manifest, read_model_config, version_dirs

__all__ = [
    "CONTAINER_ROOT",
    "CPU_IMAGE",
    "GPU_IMAGE",
    "DeploymentPlan",
    "ServedModel",
    "check_image_serves",
]

#: Where the compose files and ``tfsuite configs --container-root`` put the config dir.
CONTAINER_ROOT = "/models"
#: The last TF Serving whose GPU image has TensorRT (TF-TRT variants); and its CPU twin.
GPU_IMAGE = "tensorflow/serving:2.17.1-gpu"
CPU_IMAGE = "tensorflow/serving:2.17.1"

_TRT = re.compile(r"trt", re.IGNORECASE)
_SERVING_TAG = re.compile(r"serving:(?P<major>\d+)\.(?P<minor>\d+)(?:\.\d+)?(?P<rest>[^:/]*)$")


@dataclass(frozen=True)
class ServedModel:
    """One ``model_config_list`` entry as the host and the container see it."""

    name: str
    host_base_path: Path
    container_base_path: str
    versions: list[int]
    """The versions the server must make AVAILABLE (``up`` waits for each)."""
    labels: dict[str, int] = field(default_factory=dict)
    trt_versions: dict[int, str] = field(default_factory=dict)
    """Version -> variant name, for the TF-TRT variants among ``versions``."""


@dataclass(frozen=True)
class DeploymentPlan:
    config_dir: Path
    """The host dir, resolved."""
    mount_point: str
    """Where the containers see it (read-only)."""
    models: list[ServedModel]
    flags: list[str]
    """Model server flags after the entrypoint's own (--port=8500 --rest_api_port=8501 ...)."""

    @classmethod
    def from_config_dir(cls, config_dir: Path) -> DeploymentPlan:
        config_dir = config_dir.expanduser().resolve()
        model_config = config_dir / MODEL_CONFIG_FILE
        if not config_dir.is_dir():
            raise DeployError(f"{config_dir} is not a directory; write one with `tfsuite configs`")
        if not model_config.is_file():
            raise DeployError(
                f"{config_dir} has no {MODEL_CONFIG_FILE}; write the serving configs first: "
                f"tfsuite configs --base-path {config_dir}/MODEL --out {config_dir} "
                f"--container-root {CONTAINER_ROOT}"
            )
        try:
            config = read_model_config(model_config)
        except ConfigError as exc:
            raise DeployError(str(exc)) from None
        entries = list(config.model_config_list.config)
        if not entries:
            raise DeployError(f"{model_config} lists no models; re-run `tfsuite configs`")
        mount = _mount_point(config_dir, [(e.name, e.base_path) for e in entries])
        models = [_served_model(config_dir, mount, e) for e in entries]
        root = PurePosixPath(mount)
        flags = [f"--model_config_file={root / MODEL_CONFIG_FILE}"]
        if (config_dir / BATCHING_FILE).is_file():
            flags += [
                "--enable_batching=true",
                f"--batching_parameters_file={root / BATCHING_FILE}",
            ]
        if (config_dir / MONITORING_FILE).is_file():
            flags.append(f"--monitoring_config_file={root / MONITORING_FILE}")
        return cls(config_dir, mount, models, flags)

    @property
    def trt_versions(self) -> list[str]:
        """``MODEL:VERSION (variant)`` of every TF-TRT version the config serves."""
        return [
            f"{m.name}:{v} ({variant})"
            for m in self.models
            for v, variant in m.trt_versions.items()
        ]


def _host_path(config_dir: Path, mount: str, base_path: str) -> Path:
    rel = PurePosixPath(base_path).relative_to(mount)
    return config_dir.joinpath(*rel.parts)


def _inside(path: str, root: str) -> bool:
    try:
        PurePosixPath(path).relative_to(root)
    except ValueError:
        return False
    return True


def _mount_point(config_dir: Path, bases: list[tuple[str, str]]) -> str:
    """``/models`` if every base path is written under it, else the config dir's own path."""
    if all(_inside(b, CONTAINER_ROOT) for _, b in bases) and not all(
        _inside(b, str(config_dir)) for _, b in bases
    ):
        return CONTAINER_ROOT
    for name, base in bases:
        if not _inside(base, str(config_dir)):
            raise DeployError(
                f"base path {base} of model {name} is outside {config_dir}, the only directory "
                "mounted into the containers; put the model under it and write the configs with "
                f"`tfsuite configs --base-path {config_dir}/{name} --out {config_dir} "
                f"--container-root {CONTAINER_ROOT}`"
            )
    return str(config_dir)


def _served_model(config_dir: Path, mount: str, entry: object) -> ServedModel:
    name: str = entry.name  # type: ignore[attr-defined]
    base: str = entry.base_path  # type: ignore[attr-defined]
    host = _host_path(config_dir, mount, base)
    if not host.is_dir():
        raise DeployError(
            f"base path {base} of model {name} is {host} on this host, which does not exist; "
            "export the model there or fix models.config"
        )
    dirs = version_dirs(host)
    on_disk = dirs.versions
    policy = entry.model_version_policy  # type: ignore[attr-defined]
    kind = policy.WhichOneof("policy_choice") or "latest"
    if kind == "specific":
        versions = sorted(policy.specific.versions)
        missing = [v for v in versions if v not in on_disk]
        if missing:
            raise DeployError(
                f"models.config asks for version {missing[0]} of {name}, but {host} has no "
                "version dir for it (TF Serving would wait for it forever); re-run the export or "
                "`tfsuite configs`"
            )
    elif kind == "all":
        versions = on_disk
    else:
        versions = on_disk[-(policy.latest.num_versions or 1) :]
    if not versions:
        raise DeployError(f"{host} has no version directories; export model {name} there first")
    labels = dict(entry.version_labels)  # type: ignore[attr-defined]
    trt = {v: label for label, v in labels.items() if _TRT.search(label) and v in versions}
    try:
        manifest = read_manifest(host)
    except ConfigError as exc:
        raise DeployError(str(exc)) from None
    if manifest is not None:
        for record in manifest.variants:
            if record.status == "ok" and record.version in versions and _TRT.search(record.variant):
                trt[record.version] = record.variant
    return ServedModel(name, host, base, versions, labels, dict(sorted(trt.items())))


def check_image_serves(image: str, plan: DeploymentPlan, *, gpu: bool) -> None:
    """Refuse, before anything starts, an image that cannot load the config's TF-TRT versions.

    TF-TRT SavedModels need TensorRT in the server: only ``tensorflow/serving`` GPU images up
    to 2.17 have it (TF >= 2.18 is built without TensorRT; CPU images never had it).
    """
    trt = plan.trt_versions
    if not trt:
        return
    m = _SERVING_TAG.search(image)
    if m is not None and "-gpu" in m["rest"] and (int(m["major"]), int(m["minor"])) <= (2, 17):
        if gpu:
            return
        why = "it needs a GPU, and this engine has none (or --cpu was given)"
    elif m is not None and "-gpu" in m["rest"]:
        why = "TF Serving >= 2.18 is built without TensorRT"
    else:
        why = "it is not a TF Serving GPU image with TensorRT"
    raise DeployError(
        f"{image} cannot serve the TF-TRT versions {', '.join(trt)}: {why}; use "
        "--image tensorflow/serving:2.17.1-gpu (2.17.x-gpu) on a GPU host, or write the configs "
        "without the trt_* variants"
    )
