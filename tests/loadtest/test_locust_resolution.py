"""Sub-millisecond resolution: Locust rounds response times to whole milliseconds below
100 ms; the suite's HDR histograms keep microseconds. Against a servicer whose version 2
spins exactly 300 us longer than version 1, the difference of the two reported p50s must
be 300 us within 50 us."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixed_latency_server import MODEL, FixedLatencyServer  # type: ignore[import-not-found]
from locust_files import hdr_files  # type: ignore[import-not-found]
from locust_support import run_locust  # type: ignore[import-not-found]

DELAY_US = 300


@pytest.mark.slow
def test_p50_resolves_a_fixed_300us_difference_within_50us(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FixedLatencyServer({1: 0, 2: DELAY_US}) as server:
        done = run_locust(
            "--headless", "-u", "1", "-r", "1", "-t", "6s", "--host", server.address,
            "--tfs-model", MODEL, "--tfs-versions", "1,2", "--csv", str(out / "run"),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    hdrs = hdr_files(out)
    p50 = {name.split()[-1]: body["percentiles_ms"]["50%"] * 1e3 for name, body in hdrs.items()}
    assert min(hdrs[n]["count"] for n in hdrs) > 500
    assert abs((p50["v2"] - p50["v1"]) - DELAY_US) <= 50, p50
