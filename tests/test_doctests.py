"""The docstring examples run (``doctest``); ``opplan.planning.api`` and ``.axes`` are run by
their own tests. Importing a module runs nothing heavy, so the list is every module with
``>>>`` examples (``grep -rln '>>>' src``); an example needing files is ``+SKIP``."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES: list[object] = [
    "opplan.planning.noise_rule",
    "opplan.planning.state",
    "opplan.planning.graph",
    # a whole simulated plan: ~30 s on the shared 2-core machine
    pytest.param("opplan.planning.planner", marks=pytest.mark.slow),
    "opplan.planning.journal",
    "opplan.planning.knee",
    "opplan.engine.evaluate",
    "opplan.engine.distributed",
    "opplan.engine.short_cycle",
    "opplan.baselines._multigrid",
    "opplan.baselines._schedule",
    "opplan.baselines._grid",
    "opplan.models._frozen_bn",
    "opplan.models._p3d",
    "opplan.models._heads",
    "opplan.models._registry",
    "opplan.models._blocks",
    "opplan.models.inflate",
    "opplan.models.foreign",
    "opplan.models._global_context",
    "opplan.video.synthetic",
    "opplan.video.sampling",
    "opplan.video.datasets",
    "opplan.video.transforms",
    "opplan.video.annotations",
    "opplan.video.splits",
    "opplan.video.io._frames",
    "opplan.video.io",
    "opplan.video.io._pyav",
    "opplan.video.health",
    "opplan.video.probe",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} failed"
