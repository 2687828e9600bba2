"""Property-based requests from docs/openapi.json against the live server: no input makes it answer 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from api_helpers import AUTH, ROOT
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="session")
def api_schema(server):
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=server.url)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_makes_the_server_fail(case):
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error], timeout=30)
