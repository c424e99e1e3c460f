"""Readers for what a Locust run leaves behind (Locust's CSVs, the suite's HDR files)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def locust_rows(stats_csv: Path) -> dict[str, dict[str, str]]:
    """Locust's ``*_stats.csv`` rows by Name (the Aggregated row included)."""
    with stats_csv.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def hdr_files(directory: Path) -> dict[str, dict[str, Any]]:
    """``hdr_<entry>.json`` by entry name."""
    out = {}
    for path in sorted(directory.glob("hdr_*.json")):
        body = json.loads(path.read_text())
        out[body["entry"]] = body
    return out


def percentile_rows(directory: Path) -> dict[str, dict[str, str]]:
    with (directory / "percentiles.csv").open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}
