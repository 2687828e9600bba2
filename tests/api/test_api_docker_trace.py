"""Under `semcoder serve` with the Docker backend, a traced run never executes user or model code in the API's host.

The server holds the Docker socket (root on the host), so every execution of a run, its tests, the trace of
the failing call and the fix's confirmation, must happen in the Docker sandbox. The submitted code, at import,
writes a canary under /tmp and overwrites a file that exists only on the host: both must be untouched there,
while the run's own state shows the trace was taken. Skipped without Docker unless SEMCODER_REQUIRE_DOCKER=1
(CI), where it runs.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from api_helpers import AUTH, Server, wait_for

from agent.graph import run_values
from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from agent.persistence import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from openai_test_server import OpenAITestServer

pytestmark = pytest.mark.docker

FIX = "def add(a, b):\n    return a + b\n"


class FixingModel:
    """A scripted model: every answer is the fix (only a model may be scripted)."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        answer = f"[MONOLOGUE]\nThe sum is wrong.\n[Refined]\n```python\n{FIX}```\n[/Refined]"
        return [GenerationResult(completions=[Completion(text=answer, finish_reason="stop")] * r.params.n,
                                 usage=Usage(prompt_tokens=10, completion_tokens=10)) for r in requests]

    async def aclose(self) -> None:
        pass


def _docker_or_skip() -> None:
    import sandbox

    try:
        sandbox.Pool(workers=1, backend="docker").close()
    except sandbox.SandboxError as exc:
        if os.environ.get("SEMCODER_REQUIRE_DOCKER") == "1":
            raise
        pytest.skip(f"no Docker sandbox here: {exc}")


def test_a_traced_run_under_docker_never_runs_code_on_the_host(tmp_path):
    _docker_or_skip()
    canary = Path(f"/tmp/semcoder-canary-{uuid.uuid4().hex}")  # must never appear on the host
    host_only = tmp_path / "host-only.txt"  # exists only on the host: the code tries to overwrite it
    host_only.write_text("untouched")
    code = (f"for _path in ({str(canary)!r}, {str(host_only)!r}):\n"
            "    try:\n        open(_path, 'w').write('written by the code under test')\n"
            "    except OSError:\n        pass\n\n\n"
            "def add(a, b):\n    import os\n    uid = os.getuid()\n    return a - b\n")
    tests = "from solution import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    model = OpenAITestServer(FixingModel(), "fixer").start()
    server = Server(tmp_path / "runs.sqlite", env={"SEMCODER_SANDBOX_BACKEND": "docker",
                                                   "SEMCODER_MODEL_URL": model.url + "/v1"})
    try:
        server.start()
        with server.client() as client:
            created = client.post("/v1/repairs", headers=AUTH, json={
                "code": code, "tests": tests, "model": "openai:fixer", "dialect": "semcoder", "patcher": "model",
                "feedback": "trace", "samples": 1, "max_iterations": 2})
            assert created.status_code in (200, 201, 202), created.text
            run_id = created.json()["id"]
            final = wait_for(client, run_id, {"fixed", "not_fixed", "error"}, timeout_s=240)
    finally:
        server.stop()
        model.stop()
    assert final["status"] == "fixed", final
    assert not canary.exists(), "the code under test wrote a file on the API's host"
    assert host_only.read_text() == "untouched"
    with open_store(tmp_path / "runs.sqlite") as store:  # the server's database: the same checkpointer tables
        values = run_values(store.checkpointer, run_id)
    # The trace the model was shown is of a run as the Docker sandbox's user (uid 10001), not the host's.
    assert '{"uid": 10001}' in values["focus"]["trace"], values["focus"]["trace"]
    assert any(h["node"] == "trace" for h in values["history"])
