"""Load shapes as stages: stepped concurrency, stepped arrival rate, one stage per version.

A :class:`Stage` says how many users run, whether they pace themselves (arrival rate:
Locust's ``constant_throughput`` per user) and which entries they send to. The master (or
the local runner) decides the stages in :class:`TFServingShape` and broadcasts each one to
the workers with a Locust custom message, so every process attributes its requests to the
same stage and the server's metrics can be cut at the same boundaries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tfsuite.loadtest.swarm.options import SwarmSettings

__all__ = ["STAGE_MESSAGE", "Stage", "plan_stages"]

#: Locust custom message type of the stage broadcast.
STAGE_MESSAGE = "tfsuite_stage"


@dataclass(frozen=True)
class Stage:
    """One stage of a run."""

    index: int
    mode: Literal["closed", "open"]
    target: float
    """Users (closed loop) or requests/s over all users (open loop)."""
    users: int
    rate_per_user: float | None
    """Open loop: requests/s each user paces itself to (``constant_throughput``)."""
    entries: tuple[str, ...] | None
    """Entry names the users send to; None: every entry, by --tfs-weights."""
    duration_s: float | None
    """Planned length; None: until Locust stops the run (-t, Ctrl-C, the web UI)."""

    def as_message(self) -> dict[str, Any]:
        data = asdict(self)
        data["entries"] = list(self.entries) if self.entries is not None else None
        return data

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Stage:
        entries = data.get("entries")
        return cls(**{**data, "entries": tuple(entries) if entries is not None else None})


def whole_run(users: int) -> Stage:
    """The one stage of an unshaped run (Locust's -u/-r/-t)."""
    return Stage(0, "closed", float(users), users, None, None, None)


def plan_stages(
    settings: SwarmSettings, entry_names: list[str], users: int, run_time: float | None
) -> list[Stage]:
    """Every stage of a shaped run, in order."""
    groups: list[tuple[str, ...] | None] = (
        [(name,) for name in entry_names] if settings.sequential else [None]
    )
    levels: list[tuple[str, float]]
    if settings.steps:
        levels = [("closed", float(u)) for u in settings.steps]
    elif settings.rates:
        levels = [("open", r) for r in settings.rates]
    else:
        levels = [("closed", float(max(users, 1)))]
    count = len(groups) * len(levels)
    step_s = settings.step_s
    if run_time and not (settings.steps or settings.rates):
        step_s = run_time / count  # --tfs-sequential alone: -t split over the versions
    stages: list[Stage] = []
    for group in groups:
        for mode, target in levels:
            if mode == "open":
                n = max(1, math.ceil(target / settings.rate_per_user))
                per_user: float | None = target / n
            else:
                n, per_user = int(target), None
            stages.append(
                Stage(len(stages), mode, target, n, per_user, group, step_s)  # type: ignore[arg-type]
            )
    return stages
