"""A headless chromium (tests/viewer/cdp.py) and a real `semcoder serve` with a token, for the viewer's tests.

Without chromium the tests skip, saying so, unless SEMCODER_REQUIRE_BROWSER is set (CI sets it): then they fail.
Screenshots go to $SEMCODER_ARTIFACTS/viewer if that is set, else to the session's tmp dir; the path is printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_helpers import Server
from cdp import Browser, find_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "Debian's `chromium` is not installed (apt-get install chromium): the viewer's browser tests need it"
        if os.environ.get("SEMCODER_REQUIRE_BROWSER"):
            pytest.fail(message + " and SEMCODER_REQUIRE_BROWSER is set")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("SEMCODER_ARTIFACTS")
    where = Path(base) / "viewer" if base else tmp_path_factory.mktemp("viewer-screenshots")
    where.mkdir(parents=True, exist_ok=True)
    print(f"\nviewer screenshots: {where}", file=sys.stderr)
    return where


@pytest.fixture(scope="session")
def allowed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("viewer-allowed")


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's `--reports DIR`: the report tests write `semcoder eval --out` folders into it."""
    return tmp_path_factory.mktemp("viewer-reports")


@pytest.fixture(scope="session")
def server(chromium: str, tmp_path_factory: pytest.TempPathFactory, allowed_root: Path,
           reports_root: Path) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("viewer-api") / "runs.sqlite",
                     env={"SEMCODER_ALLOWED_ROOTS": str(allowed_root)}, args=["--reports", str(reports_root)])
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Browser]:
    started = Browser(chromium).start()
    yield started
    started.close()
