"""Classify and Regress on serialized tf.Examples: TF Serving's signature and output rules.

A signature can classify when it has one input ``inputs`` (serialized tf.Examples) and a
``classes`` and/or ``scores`` output; it can regress with one input ``inputs`` and one
output ``outputs``. With ``--enable_signature_method_name_check`` its method_name must say
so too (TF1 signatures do; TF2 signatures are all "predict", which is why TF Serving leaves
the check off by default). Checks, order and messages follow TF Serving's classifier.cc and
regressor.cc (PreProcess*/PostProcess*).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf import text_format

from tfsuite.server.errors import ServingError
from tfsuite.server.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    Servable,
    SignatureRunner,
)

__all__ = [
    "ClassifyResult",
    "classify_result",
    "examples_array",
    "examples_runner",
    "examples_signature",
    "regress_result",
]


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """Per example: ``classes`` [N, K] label bytes and/or ``scores`` [N, K] floats."""

    classes: np.ndarray | None
    scores: np.ndarray | None

    @property
    def num_examples(self) -> int:
        arr = self.scores if self.scores is not None else self.classes
        return 0 if arr is None else int(arr.shape[0])

    @property
    def num_classes(self) -> int:
        """K: classes (or scores) per example."""
        arr = self.scores if self.scores is not None else self.classes
        return 0 if arr is None else int(arr.shape[1])

    def label(self, i: int, j: int) -> str:
        """Class ``j`` of example ``i`` as text (bytes decoded as UTF-8, bad bytes replaced)."""
        assert self.classes is not None
        value = self.classes[i, j]
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_FLOAT = np.dtype(np.float32)
_TF_DTYPE_NAMES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "object": "DT_STRING",
}


def _dt_name(arr: np.ndarray) -> str:
    return _TF_DTYPE_NAMES.get(arr.dtype.name, f"DT_{arr.dtype.name.upper()}")


def _shape_text(arr: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in arr.shape) + "]"


def _one_line(runner: SignatureRunner) -> str:
    return text_format.MessageToString(runner.signature_def, as_one_line=True)


def examples_signature(runner: SignatureRunner, method: str, check_method: bool) -> str:
    """Check a signature can classify/regress (TF Serving's PreProcessClassification /
    PreProcessRegression); return its examples input alias (``inputs``).

    With ``--enable_signature_method_name_check`` off (TF Serving's default) any signature
    of the right structure qualifies, so TF2 signatures (all "predict") work too.
    """
    classify = method == CLASSIFY_METHOD
    kind = "classification" if classify else "regression"
    if check_method and runner.method_name != method:
        raise ServingError.invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {runner.method_name}"
        )
    if len(runner.inputs) != 1:
        raise ServingError.invalid_argument("Expected one input Tensor.")
    outputs = runner.output_aliases
    if classify and len(outputs) not in (1, 2):
        raise ServingError.invalid_argument(
            f"Expected one or two output Tensors, found {len(outputs)}"
        )
    if not classify and len(outputs) != 1:
        raise ServingError.invalid_argument("Expected one output Tensor.")
    if "inputs" not in runner.inputs:
        raise ServingError.invalid_argument(
            f"No {kind} inputs found in SignatureDef: {_one_line(runner)}"
        )
    if classify and not outputs & {"classes", "scores"}:
        raise ServingError.invalid_argument(
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {_one_line(runner)}'
        )
    if not classify and "outputs" not in outputs:
        raise ServingError.invalid_argument(
            f"No regression outputs found in SignatureDef: {_one_line(runner)}"
        )
    return "inputs"


def classify_result(outputs: Mapping[str, np.ndarray], n: int) -> ClassifyResult:
    """TF Serving's PostProcessClassificationResult checks, in its order and words."""
    classes = outputs.get("classes")
    scores = outputs.get("scores")
    if classes is not None:
        if classes.ndim != 2:
            raise ServingError.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(classes)}"
            )
        if classes.dtype.kind not in "OS":
            raise ServingError.invalid_argument(
                f"Expected classes Tensor of DT_STRING. Got: {_dt_name(classes)}"
            )
        if classes.shape[0] != n:
            raise ServingError.invalid_argument(
                f"Expected classes output batch size of {n}. Got: {classes.shape[0]}"
            )
    if scores is not None:
        if scores.ndim != 2:
            raise ServingError.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(scores)}"
            )
        if scores.dtype != _FLOAT:
            raise ServingError.invalid_argument(
                f"Expected scores Tensor of DT_FLOAT. Got: {_dt_name(scores)}"
            )
        if scores.shape[0] != n:
            raise ServingError.invalid_argument(
                f"Expected scores output batch size of {n}. Got: {scores.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise ServingError.invalid_argument(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    return ClassifyResult(classes, scores)


def regress_result(outputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """TF Serving's PostProcessRegressionResult checks, in its order and words."""
    values = outputs["outputs"]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise ServingError.invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{_shape_text(values)}"
        )
    if values.shape[0] != n:
        raise ServingError.invalid_argument(
            f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}"
        )
    if values.dtype != _FLOAT:
        raise ServingError.invalid_argument(
            f"Expected output Tensor of DT_FLOAT.  Got: {_dt_name(values)}"
        )
    return values.reshape(-1)


def examples_runner(servable: Servable, signature_name: str) -> SignatureRunner:
    """Classify/Regress look signatures up with their own (INVALID_ARGUMENT) message."""
    key = signature_name or DEFAULT_SIGNATURE
    runner = servable.runners.get(key)
    if runner is None:
        raise ServingError.invalid_argument(f"No signature was found with the name: {key}")
    return runner


def examples_array(examples: Sequence[bytes]) -> np.ndarray:
    arr = np.empty(len(examples), dtype=object)
    arr[:] = list(examples)
    return arr
