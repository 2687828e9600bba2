"""Fixtures for the eval tests: one real sandbox pool and one expected-outputs cache per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import Pool


@pytest.fixture(scope="session")
def runner():
    with Pool() as pool:
        yield pool


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("expected-outputs")
