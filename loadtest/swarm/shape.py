"""The locustfile's one load shape: the stages of :func:`~.stages.plan_stages`, in turn.

Active only with ``--tfs-steps`` (stepped concurrency), ``--tfs-rates`` (stepped arrival
rate) or ``--tfs-sequential`` (one stage per version); otherwise the session removes it at
init and Locust's -u/-r/-t drive the run as usual.
"""

from __future__ import annotations

from locust import LoadTestShape

from tfsuite.loadtest.swarm.session import SESSION

__all__ = ["TFServingShape"]


class TFServingShape(LoadTestShape):
    """Stepped concurrency / stepped arrival rate / one stage per version."""

    use_common_options = True  # -u is the users of --tfs-sequential stages, -t their total

    def tick(self) -> tuple[int, float] | None:
        if not SESSION.prepare():
            return None
        elapsed = self.get_run_time()
        end = 0.0
        for stage in SESSION.stages:
            end += stage.duration_s or 0.0
            if elapsed < end:
                if SESSION.current_stage != stage:
                    SESSION.begin_stage(stage)
                return stage.users, float(max(stage.users, 1))
        return None
