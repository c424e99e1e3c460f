"""Fixtures for the Locust tests: a two-version model on a real ``tfsuite serve`` process,
and real ``locust`` processes started the way users start them.

The model is ``y = k * x + 2`` (input ``x`` float32 [None, 4]), k = 0.5 in version 1
(label ``original``) and 0.25 in version 2 (label ``weight_quant``): the cheapest model
that still runs a real TensorFlow variable per version, so the load tests measure the
load generator and the transport rather than the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from locust_support import (  # type: ignore[import-not-found]
    MODEL,
    Served,
    _serve,
)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self, k: float) -> None:
            self.k = tf.Variable(k)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.k * x + 2.0}

    base = tmp_path_factory.mktemp("locust_models") / MODEL
    for version, k in ((1, 0.5), (2, 0.25)):
        module = Affine(k)
        tf.saved_model.save(
            module, str(base / str(version)), signatures={"serving_default": module.predict}
        )
    return base


@pytest.fixture(scope="session")
def served(
    tiny_base: Path, tmp_path_factory: pytest.TempPathFactory, launch_serve_session: object
) -> Iterator[Served]:
    """One ``tfsuite serve`` for the read-only Locust tests (versions 1 and 2)."""
    yield from _serve(tiny_base, tmp_path_factory.mktemp("locust_serve"), launch_serve_session)


@pytest.fixture
def own_server(tiny_base: Path, tmp_path: Path, launch_serve: object) -> Iterator[Served]:
    """A ``tfsuite serve`` of the test's own (the test changes what it serves)."""
    yield from _serve(tiny_base, tmp_path, launch_serve)
