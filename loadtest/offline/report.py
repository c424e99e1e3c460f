"""Bench outputs: ``table.csv``, ``table.md``, ``bench.json`` and ``throughput.png``.

Every file is written to a temp name and renamed, after every case, so an interrupted run
leaves complete files holding every finished row. Failed and skipped rows carry seed 003's
markers: 0 images/s and -1 for every latency.
"""

from __future__ import annotations

import csv
import io
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from tfsuite.atomic import atomic_path, atomic_write_json, atomic_write_text
from tfsuite.loadtest.offline.runner import BenchSettings, CaseResult

__all__ = ["COLUMNS", "BenchReport", "environment"]

#: table.csv / table.md columns, in order.
COLUMNS: tuple[str, ...] = (
    "model",
    "variant",
    "version",
    "precision",
    "backend",
    "batch_size",
    "status",
    "images_per_sec",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "trimmed_mean_ms",
    "min_ms",
    "total_time_s",
    "iterations",
    "size_mb",
    "nodes",
    "conversion_s",
    "backend_conversion_s",
    "backend_max_abs_err",
    "cpu_process_pct",
    "cpu_system_pct",
    "gpu_util_pct",
    "gpu_mem_mb",
    "error",
    "log",
)

_FAILED_MARKERS = {
    "images_per_sec": 0,
    "p50_ms": -1,
    "p90_ms": -1,
    "p99_ms": -1,
    "mean_ms": -1,
    "trimmed_mean_ms": -1,
    "min_ms": -1,
    "total_time_s": -1,
    "iterations": 0,
}


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _sci(value: object) -> str:
    return f"{value:.2e}" if isinstance(value, float) else ""


def row_of(result: CaseResult) -> dict[str, Any]:
    """One table row as strings (empty = not applicable / not measured)."""
    row: dict[str, Any] = {
        "model": result.model,
        "variant": result.variant,
        "version": result.version,
        "precision": result.precision,
        "backend": result.backend,
        "batch_size": result.batch_size,
        "status": result.status,
        "size_mb": _num(result.size_bytes / 2**20 if result.size_bytes is not None else None, 2),
        "nodes": "" if result.nodes is None else result.nodes,
        "conversion_s": _num(result.conversion_seconds, 2),
        "backend_conversion_s": _num(result.backend_conversion_seconds, 2),
        "backend_max_abs_err": _sci(result.backend_details.get("onnx_max_abs_error_vs_tf")),
        "error": result.error,
        "log": result.log_path,
    }
    s = result.stats
    if s is None:
        row.update(_FAILED_MARKERS)
    else:
        row.update(
            images_per_sec=_num(s.images_per_sec, 1),
            p50_ms=_num(s.p50_ms, 3),
            p90_ms=_num(s.p90_ms, 3),
            p99_ms=_num(s.p99_ms, 3),
            mean_ms=_num(s.mean_ms, 3),
            trimmed_mean_ms=_num(s.trimmed_mean_ms, 3),
            min_ms=_num(s.min_ms, 3),
            total_time_s=_num(s.total_time_s, 6),
            iterations=s.iterations,
        )
    u = result.utilisation
    row.update(
        cpu_process_pct=_num(u.cpu_process_pct if u else None, 0),
        cpu_system_pct=_num(u.cpu_system_pct if u else None, 0),
        gpu_util_pct=_num(u.gpu_util_pct if u else None, 0),
        gpu_mem_mb=_num(u.gpu_mem_mb if u else None, 0),
    )
    return row


def environment(settings: BenchSettings) -> dict[str, Any]:
    """Where the numbers were taken."""
    import tensorflow as tf

    env: dict[str, Any] = {
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "threads": settings.threads,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                env["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import tf2onnx

        env["tf2onnx"] = tf2onnx.__version__
    except ImportError:
        pass
    return env


def _settings_dict(s: BenchSettings) -> dict[str, Any]:
    return {
        "batch_sizes": s.batch_sizes,
        "backends": s.backends,
        "warmup": s.warmup,
        "iterations": s.iterations,
        "duration_s": s.duration_s,
        "threads": s.threads,
        "input_shapes": {k: list(v) for k, v in s.input_shapes.items()},
        "seed": s.seed,
        "convert_timeout_s": s.convert_timeout_s,
        "onnx_spinning": s.onnx_spinning,
    }


class BenchReport:
    """Collects results and (re)writes every output file in ``settings.out``."""

    def __init__(self, settings: BenchSettings, *, overhead_ns: float | None = None) -> None:
        self.settings = settings
        self.out = settings.out
        self.results: list[CaseResult] = []
        self.overhead_ns = overhead_ns
        self.env = environment(settings)
        self.interrupted = False
        #: Settings of every job (assignment lines may differ in batch sizes and backends).
        self.job_settings: list[BenchSettings] = [settings]

    def add(self, result: CaseResult) -> None:
        self.results.append(result)
        self.write_tables()

    # -- measurement overhead ------------------------------------------------------------------
    def fastest_latency_ms(self) -> float | None:
        lat = [r.stats.p50_ms for r in self.results if r.stats is not None]
        return min(lat) if lat else None

    def overhead_pct(self) -> float | None:
        fastest = self.fastest_latency_ms()
        if self.overhead_ns is None or not fastest:
            return None
        return 100.0 * (self.overhead_ns / 1e6) / fastest

    def overhead_line(self) -> str:
        if self.overhead_ns is None:
            return "measurement overhead: not measured"
        pct = self.overhead_pct()
        tail = (
            f" = {pct:.4f}% of the fastest case's median latency ({self.fastest_latency_ms():.3f} ms)"
            if pct is not None
            else ""
        )
        return f"measurement overhead: {self.overhead_ns:.0f} ns per iteration (timer + bookkeeping){tail}"

    # -- files ------------------------------------------------------------------------------------
    def write_tables(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        rows = [row_of(r) for r in self.results]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.out / "table.csv", buf.getvalue())
        atomic_write_text(self.out / "table.md", self.markdown(rows))
        atomic_write_json(self.out / "bench.json", self.document(), indent=1)

    def markdown(self, rows: Sequence[dict[str, Any]]) -> str:
        shown = [c for c in COLUMNS if c not in ("log",)]
        lines = [
            "# tfsuite bench",
            "",
            "| " + " | ".join(shown) + " |",
            "|" + "|".join("---" for _ in shown) + "|",
        ]
        for row in rows:
            lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in shown) + " |")
        lines += ["", f"{self.overhead_line()}.", ""]
        lines.append(
            f"TensorFlow {self.env.get('tensorflow')}, onnxruntime {self.env.get('onnxruntime', '-')}, "
            f"CPU {self.env.get('cpu')} ({self.env.get('cpu_count_logical')} logical cores), "
            f"threads {self.settings.threads or 'default'}, warm-up {self.settings.warmup}, "
            + (
                f"duration {self.settings.duration_s}s"
                if self.settings.duration_s
                else f"iterations {self.settings.iterations}"
            )
            + "."
        )
        if self.interrupted:
            lines += ["", "**Interrupted**: only the rows above finished."]
        lines.append("")
        return "\n".join(lines)

    def document(self) -> dict[str, Any]:
        return {
            "settings": _settings_dict(self.settings),
            "job_settings": [_settings_dict(j) for j in self.job_settings],
            "environment": self.env,
            "measurement_overhead": {
                "ns_per_iteration": self.overhead_ns,
                "fastest_case_median_ms": self.fastest_latency_ms(),
                "percent_of_fastest_case": self.overhead_pct(),
            },
            "interrupted": self.interrupted,
            "cases": [
                {
                    "case_id": r.case_id,
                    "row": row_of(r),
                    "stats": r.stats.to_dict() if r.stats else None,
                    "utilisation": r.utilisation.to_dict() if r.utilisation else None,
                    "backend_details": r.backend_details,
                    "trace": r.trace_path,
                    "latencies_ns": r.latencies_ns,
                }
                for r in self.results
            ],
        }

    def plot(self) -> Path | None:
        """images/s vs batch size, one line per model variant x backend."""
        ok = [r for r in self.results if r.stats is not None]
        if not ok:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        series: dict[str, list[tuple[int, float]]] = {}
        for r in ok:
            assert r.stats is not None
            series.setdefault(f"{r.model} {r.variant} ({r.backend})", []).append(
                (r.batch_size, r.stats.images_per_sec)
            )
        for label, points in sorted(series.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xscale("log", base=2)
        sizes = sorted({r.batch_size for r in ok})
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/sec")
        ax.set_title("tfsuite bench: throughput vs batch size")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = self.out / "throughput.png"
        try:
            with atomic_path(path, suffix=".png") as tmp:  # matplotlib picks the format from it
                fig.savefig(tmp, dpi=100)
        finally:
            plt.close(fig)
        return path
