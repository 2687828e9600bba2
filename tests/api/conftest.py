"""One `semcoder serve` for the API tests that can share it (the restart test starts its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import Server


@pytest.fixture(scope="session")
def project_root(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, project_root) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("api") / "runs.sqlite",
                     env={"SEMCODER_ALLOWED_ROOTS": str(project_root), "SEMCODER_MAX_REQUEST_BYTES": "200000"})
    running.start()
    yield running
    running.stop()
