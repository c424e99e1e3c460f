"""Output agreement of served versions: the same fixed inputs through every version, each
compared with the reference version's outputs (:mod:`tfsuite.export.agreement`, pure numpy).

    reference = served_outputs(client, pool, version=1)
    agreement = served_agreement(reference, served_outputs(client, pool, version=2), kind, 1)

``kind`` is the model kind from ``variants.json`` when there is one; otherwise it is read off
the outputs (:func:`guess_kind`): detection outputs make a detector, one 2-D float output
with several columns a classifier, anything else is compared as generic tensors.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.export.agreement import compare_outputs, detection_match
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.results import Agreement

__all__ = ["DETECTION_KEYS", "guess_kind", "served_agreement", "served_outputs"]

DETECTION_KEYS = frozenset({"detection_boxes", "detection_scores", "detection_classes"})

Outputs = dict[str, np.ndarray]


def guess_kind(outputs: Mapping[str, np.ndarray]) -> str:
    """'detector', 'classifier' or 'generic', from the output names and shapes."""
    if DETECTION_KEYS <= set(outputs):
        return "detector"
    if len(outputs) == 1:
        (only,) = outputs.values()
        if only.dtype.kind == "f" and only.ndim == 2 and only.shape[1] > 1:
            return "classifier"
    return "generic"


def served_outputs(
    client: TFServingClient,
    pool: RequestPool,
    version: int | None = None,
    label: str | None = None,
) -> Outputs:
    """Every pool input through one version, outputs concatenated along the batch axis."""
    answers = [
        client.predict(inputs, pool.model, version, label, pool.signature) for inputs in pool.inputs
    ]
    return {key: np.concatenate([a[key] for a in answers]) for key in answers[0]}


def served_agreement(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    kind: str | None,
    reference_version: int,
) -> Agreement:
    """``outputs`` against ``reference`` (no tolerances: the figures, not a verdict)."""
    kind = kind or guess_kind(reference)
    result = compare_outputs(reference, outputs, kind, tolerance={})
    inputs = len(next(iter(reference.values()))) if reference else 0
    agreement = Agreement(
        reference_version=reference_version,
        inputs=inputs,
        max_abs_error=result.max_abs_error,
        max_rel_error=result.max_rel_error,
        top1=result.top1_agreement,
        detection_match=result.detection_agreement,
    )
    if kind == "detector" and DETECTION_KEYS <= set(reference) and DETECTION_KEYS <= set(outputs):
        agreement.score_drift = detection_match(reference, outputs).score_drift
    if not result.passed and result.detail:
        agreement.detail = result.detail
    return agreement
