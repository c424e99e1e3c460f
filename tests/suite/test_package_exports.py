"""Every module of the suite declares ``__all__``, and every name in it exists (httpx's habit)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

#: The top-level folders pyproject.toml maps into the ``tfsuite`` namespace.
PACKAGES = (
    "tfsuite",
    "tfsuite.export",
    "tfsuite.serving_configs",
    "tfsuite.server",
    "tfsuite.clients",
    "tfsuite.loadtest",
    "tfsuite.deploy",
)
#: Subpackages (structure by concern shows in folders).
SUBPACKAGES = (
    "tfsuite.loadtest.offline",
    "tfsuite.loadtest.online",
    "tfsuite.loadtest.report",
    "tfsuite.loadtest.swarm",
)
#: Locust entry points patch the importing process (gRPC's gevent poller): they are checked
#: in a process of their own (tests/loadtest/test_locust_units.py).
ENTRY_POINTS = frozenset({"tfsuite.loadtest.locustfile"})


def _modules() -> list[str]:
    found = []
    for package in PACKAGES:
        path = importlib.import_module(package).__path__
        found += [info.name for info in pkgutil.walk_packages(path, prefix=f"{package}.")]
    return sorted(
        name
        for name in found
        if not name.endswith("__main__") and name not in PACKAGES and name not in ENTRY_POINTS
    )


MODULES = _modules()


def test_every_package_has_modules() -> None:
    packages = {name.rsplit(".", 1)[0] for name in MODULES}
    assert set(PACKAGES) <= packages <= set(PACKAGES) | set(SUBPACKAGES)
    assert len(MODULES) > 80


@pytest.mark.parametrize("name", MODULES)
def test_module_all_names_exist(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # `import locust` gevent-patches the whole process unless told not to; this one must stay
    # unpatched (the Locust modules run patched in their own processes).
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [attr for attr in exported if not hasattr(module, attr)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
