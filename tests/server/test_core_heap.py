"""The collector policy: models frozen out of collections after a load, freed after an unload."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from tfsuite.server.heap import release_after_unload, settle_after_load
from tfsuite.server.model_manager import ModelManager
from tfsuite.server.options import ServerOptions


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_objects_survive_collections_until_released() -> None:
    obj = _Cycle()
    ref = weakref.ref(obj)
    settle_after_load()  # obj is alive here, so it is frozen
    del obj
    gc.collect()
    assert ref() is not None  # a frozen cycle is not walked by the collector
    release_after_unload()
    assert ref() is None  # thawed and collected
    assert gc.get_freeze_count() > 0  # what is still alive is frozen again


def test_manager_freezes_after_load(half_plus_two_base: Path) -> None:
    gc.unfreeze()
    manager = ModelManager(
        ServerOptions(model_base_path=str(half_plus_two_base), file_system_poll_wait_seconds=0)
    )
    manager.start()
    try:
        assert gc.get_freeze_count() > 10_000  # TensorFlow's objects and the model's
    finally:
        manager.stop()
