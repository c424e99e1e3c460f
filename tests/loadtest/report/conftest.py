"""Fixtures for the report tests; the realistic small run itself is built in report_runs.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from report_runs import build_results  # type: ignore[import-not-found]


@pytest.fixture
def write_run(tmp_path: Path) -> Callable[..., Path]:
    """Write ``build_results(**kwargs)`` to a results.json under tmp_path; returns its path."""
    counter = iter(range(1000))

    def write(**kwargs: object) -> Path:
        path = tmp_path / f"run{next(counter)}" / "results.json"
        path.parent.mkdir(parents=True)
        build_results(**kwargs).write(path)  # type: ignore[arg-type]
        return path

    return write
