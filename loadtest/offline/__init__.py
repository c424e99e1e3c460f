"""The offline benchmark (``tfsuite bench``): variants x batch sizes x backends, in process.

    from tfsuite.loadtest.offline import BenchJob, BenchSettings, run_bench, targets_from_base_path

Modules: ``targets`` (what to run), ``inputs`` (synthetic feeds), ``backends`` (tf /
onnxruntime / tf-trt), ``onnx`` (conversion), ``measure`` (the timed loop), ``stats`` (seed
000's statistics and printed format), ``runner`` (the matrix), ``report`` (tables,
bench.json, plot), ``trace`` (Chrome traces), ``utilisation`` (CPU/GPU sampling),
``assignment`` (seed 003's assignment.csv), ``bench`` (the library call), ``cli``.

Names are resolved on first use (PEP 562): importing one submodule (the CLI's option
parsing, say) does not pull in TensorFlow through the others.
"""

from __future__ import annotations

from tfsuite.lazy_exports import lazy_exports

_EXPORTS: dict[str, str] = {
    "BenchJob": "bench",
    "BenchReport": "bench",
    "BenchSettings": "bench",
    "CaseResult": "bench",
    "check_input_shapes": "bench",
    "jobs_from_assignment": "bench",
    "run_bench": "bench",
    "targets_from_base_path": "bench",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
