"""``CONFIG_DIR/endpoints.json``: where ``tfsuite up`` put the servers.

Written by ``tfsuite up`` (atomically), read by ``tfsuite down`` (which run to remove) and by
the clients' ``--endpoints FILE`` (``detect``, ``classify``; later ``compare`` and Locust).
Light on purpose: pydantic only, no Docker, no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from tfsuite.atomic import atomic_write_text
from tfsuite.errors import UsageError

__all__ = ["ENDPOINTS_FILE", "Endpoint", "EndpointsFile", "ModelVersions"]

ENDPOINTS_FILE = "endpoints.json"


class Endpoint(BaseModel):
    """One serving container and its published ports."""

    container: str = Field(description="Container name.")
    container_id: str = Field(description="Short container id.")
    grpc: str = Field(description="HOST:PORT of the gRPC API (PredictionService, ModelService).")
    rest: str = Field(description="HOST:PORT of the REST API and /monitoring/prometheus/metrics.")
    gpu: str | None = Field(default=None, description="GPU index given to it (--gpus), if any.")


class ModelVersions(BaseModel):
    """A served model and the versions ``up`` waited for."""

    versions: list[int]
    labels: dict[str, int] = Field(default_factory=dict)


class EndpointsFile(BaseModel):
    """The whole file."""

    run_id: str = Field(description="Run id: the `tfsuite.run` label of everything started.")
    image: str = Field(description="Image the containers run.")
    config_dir: str = Field(description="Host config dir mounted (read-only) into the containers.")
    models: dict[str, ModelVersions] = Field(description="Model name -> versions and labels.")
    endpoints: list[Endpoint]

    def addresses(self, api: str = "grpc") -> list[str]:
        """Every endpoint's gRPC (or REST) HOST:PORT, in container order."""
        return [getattr(e, api) for e in self.endpoints]

    def write(self, config_dir: Path) -> Path:
        return atomic_write_text(config_dir / ENDPOINTS_FILE, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> EndpointsFile:
        """Parse ``path`` (a file, or a config dir holding endpoints.json); ``UsageError`` if bad."""
        if path.is_dir():
            path = path / ENDPOINTS_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UsageError(f"{path} does not exist; `tfsuite up CONFIG_DIR` writes it") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "file"
            raise UsageError(
                f"{path} is not an endpoints file ({where}: {first.get('msg')}); "
                "re-run `tfsuite up`"
            ) from None
