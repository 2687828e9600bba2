"""Fixtures of the MCP tests: a copy of examples/inventory, and one HTTP server for the tests that can share it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp_helpers import HttpServer, copy_inventory


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory):
    """An allowed root holding a copy of examples/inventory (the tests never change it)."""
    root = tmp_path_factory.mktemp("allowed")
    copy_inventory(root)
    return root


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory, shared_root) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path_factory.mktemp("mcp-http") / "server.log", "--allowed-root", str(shared_root))
    server.start()
    yield server
    server.stop()
