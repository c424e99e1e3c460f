"""TF Serving / TensorFlow protobuf modules, without importing TensorFlow's runtime.

``tensorflow_serving.apis.*_pb2`` import ``tensorflow.core.*_pb2``, and importing any
``tensorflow.*`` module first runs ``tensorflow/__init__.py`` (about 3 s and 3000 modules).
Clients and load generators only need the generated message classes, so when TensorFlow
is not imported yet we register the *real* (empty) ``tensorflow.core`` package modules from
their own files and leave ``tensorflow`` itself unimported. The generated ``_pb2`` modules
then load from their installed files as usual, and a later ``import tensorflow`` runs its
normal initialisation and reuses them (the descriptors are the same objects either way).

Nothing is copied or generated here; the messages are the ones shipped by ``tensorflow``
and ``tensorflow-serving-api``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

__all__ = ["ensure_light_protos"]

_PACKAGES = (
    "tensorflow.core",
    "tensorflow.core.framework",
    "tensorflow.core.protobuf",
    "tensorflow.core.example",
    "tensorflow.core.util",
    "tensorflow.compiler",
    "tensorflow.compiler.xla",
    "tensorflow.compiler.xla.tsl",
    "tensorflow.compiler.xla.tsl.protobuf",
)


def ensure_light_protos() -> None:
    """Make ``tensorflow.core.*_pb2`` importable without running ``tensorflow/__init__``."""
    if "tensorflow" in sys.modules or "tensorflow.core" in sys.modules:
        return
    spec = importlib.util.find_spec("tensorflow")  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        return  # let the normal import raise its own ModuleNotFoundError
    root = next(iter(spec.submodule_search_locations))
    for name in _PACKAGES:
        path = f"{root}/{name.split('.', 1)[1].replace('.', '/')}"
        sub = importlib.util.spec_from_file_location(
            name, f"{path}/__init__.py", submodule_search_locations=[path]
        )
        if sub is None or sub.loader is None or not os.path.exists(sub.origin or ""):
            continue
        module: ModuleType = importlib.util.module_from_spec(sub)
        sys.modules[name] = module
        sub.loader.exec_module(module)
        # ``from tensorflow.core.framework import x_pb2`` falls back to ``__import__`` of the
        # dotted name, which would import the top-level ``tensorflow``; resolving the
        # submodule here with import_module (parent already in sys.modules) does not.
        module.__getattr__ = _submodule_loader(name)  # type: ignore[attr-defined]


def _submodule_loader(package: str):
    def load(attr: str) -> ModuleType:
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            return importlib.import_module(f"{package}.{attr}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}") from None

    return load


ensure_light_protos()
