"""The API's edges against a live server: auth, validation, limits, the path allow-list, archives."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest
from api_helpers import AUTH, GRADE_TESTS, GRADES, grade_request, wait_for
from click.testing import CliRunner

from agent.serve_cli import serve_command

# A one-step fix for the project-level tests (the grades task takes several).
ADD = "def add(a, b):\n    return a - b\n"
ADD_TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"


def test_health_is_public_and_v1_needs_the_token(server):
    with server.client() as client:
        assert client.get("/health").json()["status"] == "ok"
        for method, path in [("GET", "/v1/repairs"), ("GET", "/v1/models"), ("POST", "/v1/repairs"),
                             ("GET", "/v1/repairs/abc"), ("POST", "/v1/repairs/abc/cancel"),
                             ("GET", "/v1/repairs/abc/events")]:
            missing = client.request(method, path)
            wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
            assert (missing.status_code, wrong.status_code) == (401, 401), path
            assert missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/repairs", headers=AUTH).status_code == 200


@pytest.mark.parametrize(("body", "needle"), [
    ({"code": GRADES, "model": "none"}, "needs both code and tests"),
    ({"tests": GRADE_TESTS}, "exactly one of"),
    ({**grade_request(), "project_path": "/tmp"}, "exactly one of"),
    ({**grade_request(), "colour": "red"}, "extra"),
    (grade_request(model="gpt"), "pattern"),
    (grade_request(patcher="model"), "needs a model"),
    (grade_request(max_iterations=-1), "greater than or equal"),
    (grade_request(code="def broken(:\n"), "does not parse"),
    (grade_request(entry_point="missing"), "not a function defined"),
    ({"project_archive": "not base64!"}, "not valid base64"),
    ({"project_path": "relative/dir"}, "must be absolute"),
])
def test_bad_bodies_get_422_with_the_reason(server, body, needle):
    with server.client() as client:
        response = client.post("/v1/repairs", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert needle in response.text
    assert GRADES not in response.text  # inputs are not echoed back


def test_unknown_runs_are_404_and_oversized_bodies_413(server):
    with server.client() as client:
        assert client.get("/v1/repairs/nope", headers=AUTH).status_code == 404
        assert client.post("/v1/repairs/nope/cancel", headers=AUTH).status_code == 404
        huge = grade_request(problem="x" * 300_000)  # the test server caps bodies at 200 kB
        assert client.post("/v1/repairs", json=huge, headers=AUTH).status_code == 413
        assert client.post("/v1/repairs", content=b"{", headers={**AUTH, "content-type": "application/json"}
                           ).status_code == 422


def test_project_paths_must_be_under_an_allowed_root(server, project_root, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "tests").mkdir(parents=True)
    escape = project_root / "link-out"
    escape.symlink_to(outside)
    with server.client() as client:
        for path in (outside, escape, project_root / ".." / tmp_path.name):
            response = client.post("/v1/repairs", json={"project_path": str(path)}, headers=AUTH)
            assert response.status_code == 403, (path, response.text)
        inside = project_root / "proj"
        inside.mkdir()
        (inside / "calc.py").write_text(ADD)
        (inside / "test_calc.py").write_text(ADD_TESTS)
        accepted = client.post("/v1/repairs", json={"project_path": str(inside)}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        done = wait_for(client, accepted.json()["id"], {"fixed", "not_fixed", "error"})
    assert (done["status"], done["kind"], done["target"], done["tests_passed"]) == ("fixed", "project", str(inside), 2)
    assert "+    return a + b" in done["diff"] and (inside / "calc.py").read_text() == ADD


def _archive(members: dict[str, bytes], link: str | None = None) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo("escape")
            info.type, info.linkname = tarfile.SYMTYPE, link
            archive.addfile(info)
    return base64.b64encode(buffer.getvalue()).decode()


def test_archives_are_unpacked_safely_and_repaired(server):
    project = {"calc.py": ADD.encode(), "test_calc.py": ADD_TESTS.encode()}
    with server.client() as client:
        for bad, needle in [(_archive({"../evil.py": b"x = 1\n"}), "outside the project"),
                            (_archive(project, link="/etc/passwd"), "not a regular file"),
                            (base64.b64encode(b"plain bytes").decode(), "not a readable .tar.gz")]:
            response = client.post("/v1/repairs", json={"project_archive": bad}, headers=AUTH)
            assert response.status_code == 422 and needle in response.text, response.text
        accepted = client.post("/v1/repairs", json={"project_archive": _archive(project)}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        done = wait_for(client, accepted.json()["id"], {"fixed", "not_fixed", "error"})
    assert (done["status"], done["target"]) == ("fixed", "archive")


def test_models_lists_none(server):
    with server.client() as client:
        models = client.get("/v1/models", headers=AUTH).json()["models"]
    assert models[0] == {"id": "none", "description": models[0]["description"], "available": True}


def test_serve_refuses_a_public_address_without_a_token(monkeypatch, tmp_path):
    monkeypatch.delenv("SEMCODER_API_TOKEN", raising=False)
    result = CliRunner().invoke(serve_command, ["--host", "0.0.0.0", "--db-url", f"sqlite:///{tmp_path}/x.sqlite"])
    assert result.exit_code != 0 and "without a token" in result.output
