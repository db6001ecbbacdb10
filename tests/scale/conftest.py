"""One real local Ray cluster (loopback, 2 logical CPUs) for the Ray tests; its workers import ``support``."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_cluster():
    pytest.importorskip("ray")
    from vidspan.scale import RayOptions, ray_session

    with ray_session(RayOptions(local_cpus=2, env={"PYTHONPATH": str(TESTS)})) as ray:
        yield ray
