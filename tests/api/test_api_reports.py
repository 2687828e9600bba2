"""GET /v1/reports...: eval report folders under `semcoder serve --reports DIR`, read-only and confined to DIR.

The folder here is written by evals' own writer (evals/_round_report.py write_report, evals/model_run.py
task_outcomes), so the reader's schema is checked against what the eval writes; tests/viewer/test_reports.py reads a
folder a whole `semcoder eval --model` run wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from api_helpers import AUTH, TOKEN
from click.testing import CliRunner
from fastapi.testclient import TestClient

from agent.api import ApiSettings, create_app
from agent.refine import FailingTest
from agent.serve_cli import serve_command
from evals._round_report import RoundScore, RunReport, write_report
from evals.model_run import task_outcomes

PROGRAM_BAD = "def f(x):\n    return x\n"
PROGRAM_GOOD = "def f(x):\n    return x + 1\n"


def write_folder(out: Path) -> None:
    """Two tasks, two samples, one refinement round: what semcoder eval writes for them."""
    out.mkdir(parents=True)
    tasks = [SimpleNamespace(task_id="T/0"), SimpleNamespace(task_id="T/1")]
    round0 = ({"T/0": [PROGRAM_BAD, PROGRAM_GOOD], "T/1": [PROGRAM_GOOD, PROGRAM_GOOD]},
              {"T/0": [False, True], "T/1": [True, True]}, {"T/0": ["assert f(1) == 2 failed", ""], "T/1": ["", ""]})
    round1 = ({"T/0": [PROGRAM_GOOD, PROGRAM_GOOD], "T/1": [PROGRAM_GOOD, PROGRAM_GOOD]},
              {"T/0": [True, True], "T/1": [True, True]}, {"T/0": ["", ""], "T/1": ["", ""]})
    shown = [{"T/0": {0: FailingTest(call="f(1)", expected="2")}}]
    report = RunReport(benchmark="humaneval", model="m", n_tasks=2, n_samples_per_task=2, feedback="semcoder",
                       rounds=[RoundScore(round=0, pass_at_1=0.75, solved_tasks=1, refined_samples=0),
                               RoundScore(round=1, pass_at_1=1.0, solved_tasks=2, refined_samples=1)])
    write_report(report, out, task_outcomes(tasks, [round0, round1], shown))


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    root.mkdir()
    write_folder(root / "run-a")
    return root


@pytest.fixture
def client(tmp_path: Path, reports: Path) -> TestClient:
    app = create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite", api_token=TOKEN,
                                 reports_dir=reports))
    return TestClient(app)  # no lifespan: the report routes need neither the run store nor the sandbox


def test_reports_need_the_token(client: TestClient) -> None:
    for path in ("/v1/reports", "/v1/reports/run-a", "/v1/reports/run-a/task?task_id=T/0"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers=AUTH).status_code == 200


def test_the_api_reads_what_the_eval_wrote(client: TestClient, reports: Path) -> None:
    listed = client.get("/v1/reports", headers=AUTH).json()
    assert listed["configured"] is True
    [entry] = listed["reports"]
    assert entry["name"] == "run-a" and entry["error"] is None
    assert entry["report"] == json.loads((reports / "run-a" / "report.json").read_text())
    detail = client.get("/v1/reports/run-a", headers=AUTH).json()
    assert detail["has_tasks"] is True
    assert detail["tasks"] == [
        {"task_id": "T/0", "rounds": [{"round": 0, "passed": 1, "samples": 2}, {"round": 1, "passed": 2, "samples": 2}]},
        {"task_id": "T/1", "rounds": [{"round": 0, "passed": 2, "samples": 2}, {"round": 1, "passed": 2, "samples": 2}]}]
    task = client.get("/v1/reports/run-a/task", params={"task_id": "T/0"}, headers=AUTH).json()
    written = json.loads((reports / "run-a" / "tasks.jsonl").read_text().splitlines()[0])
    assert task == written
    assert task["rounds"][0]["samples"][0] == {"program": PROGRAM_BAD, "passed": False,
                                               "detail": "assert f(1) == 2 failed",
                                               "failing_input": {"call": "f(1)", "expected": "2"}}
    assert task["rounds"][1]["samples"][0]["failing_input"] is None  # the last round: nothing shown next


def test_missing_reports_and_tasks_are_404(client: TestClient, reports: Path) -> None:
    assert client.get("/v1/reports/nope", headers=AUTH).status_code == 404
    assert client.get("/v1/reports/run-a/task", params={"task_id": "T/9"}, headers=AUTH).status_code == 404
    (reports / "empty").mkdir()
    assert client.get("/v1/reports/empty", headers=AUTH).status_code == 404
    old = reports / "old"  # a report of an older semcoder eval: no tasks.jsonl
    write_folder(old)
    (old / "tasks.jsonl").unlink()
    assert client.get("/v1/reports/old", headers=AUTH).json()["has_tasks"] is False
    assert client.get("/v1/reports/old/task", params={"task_id": "T/0"}, headers=AUTH).status_code == 404
    assert {e["name"] for e in client.get("/v1/reports", headers=AUTH).json()["reports"]} == {"run-a", "old"}


def test_names_with_dots_or_symlinks_out_of_the_directory_are_refused(client: TestClient, reports: Path,
                                                                      tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_folder(outside)  # a real report, outside DIR
    (reports / "escape").symlink_to(outside, target_is_directory=True)
    (reports / "run-b").mkdir()
    (reports / "run-b" / "report.json").symlink_to(outside / "report.json")
    for name in ("escape", "run-b"):
        answer = client.get(f"/v1/reports/{name}", headers=AUTH)
        assert answer.status_code == 403, answer.text
        assert client.get(f"/v1/reports/{name}/task", params={"task_id": "T/0"}, headers=AUTH).status_code == 403
    for name in ("..", "%2E%2E", "..%2Foutside", "%2E%2E%2Foutside", ".hidden", "a..b"):
        answer = client.get(f"/v1/reports/{name}", headers=AUTH)
        assert answer.status_code in (404, 422), (name, answer.status_code)
        assert "outside" not in answer.text or answer.status_code == 422, (name, answer.text)
    assert client.get("/v1/reports/%2E%2E", headers=AUTH).status_code == 422
    assert {e["name"] for e in client.get("/v1/reports", headers=AUTH).json()["reports"]} == {"run-a"}


def test_report_files_are_size_capped(tmp_path: Path, reports: Path) -> None:
    big = reports / "big"
    write_folder(big)
    with (big / "tasks.jsonl").open("a") as file:
        file.write(json.dumps({"task_id": "T/big", "rounds": [{"round": 0, "samples": [
            {"program": "x" * 4000, "passed": False}]}]}) + "\n")
    app = create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite", api_token=TOKEN,
                                 reports_dir=reports, max_report_bytes=2048))
    client = TestClient(app)
    assert client.get("/v1/reports/run-a", headers=AUTH).status_code == 200
    assert client.get("/v1/reports/big", headers=AUTH).status_code == 413


def test_without_a_reports_directory(tmp_path: Path) -> None:
    client = TestClient(create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite", api_token=TOKEN)))
    assert client.get("/v1/reports", headers=AUTH).json() == {"configured": False, "reports": []}
    assert client.get("/v1/reports/run-a", headers=AUTH).status_code == 404


def test_the_reports_directory_is_a_flag_and_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCODER_REPORTS_DIR", str(tmp_path / "r"))
    assert ApiSettings().reports_dir == (tmp_path / "r").resolve()
    shown = CliRunner().invoke(serve_command, ["--help"])
    assert "--reports" in shown.output and "SEMCODER_REPORTS_DIR" in shown.output
    description = ApiSettings.model_fields["reports_dir"].description
    assert description.split()[0] in shown.output


def test_an_uploaded_report_is_kept_and_read_back_like_a_written_one(client: TestClient, reports: Path,
                                                                     tmp_path: Path) -> None:
    elsewhere = tmp_path / "gpu-box" / "he"
    write_folder(elsewhere)  # a folder written on another machine, uploaded as its two files
    body = {"name": "from-gpu", "report": json.loads((elsewhere / "report.json").read_text()),
            "tasks": [json.loads(line) for line in (elsewhere / "tasks.jsonl").read_text().splitlines()]}
    assert client.post("/v1/reports", json=body).status_code == 401
    created = client.post("/v1/reports", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "from-gpu"
    assert (reports / "from-gpu" / "tasks.jsonl").read_text() == (elsewhere / "tasks.jsonl").read_text()
    uploaded = client.get("/v1/reports/from-gpu", headers=AUTH).json()
    written = client.get("/v1/reports/run-a", headers=AUTH).json()
    assert {**uploaded, "name": "run-a"} == written  # same report, same task grid as the folder semcoder eval wrote
    assert [e["name"] for e in client.get("/v1/reports", headers=AUTH).json()["reports"]] == ["from-gpu", "run-a"]

    again = client.post("/v1/reports", json=body, headers=AUTH)
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    assert client.post("/v1/reports", json={**body, "name": "run-a"}, headers=AUTH).status_code == 409
    assert (reports / "run-a" / "report.json").read_text() == (elsewhere / "report.json").read_text()  # untouched
    for bad_name in ("../out", ".hidden", "a/b", ""):
        assert client.post("/v1/reports", json={**body, "name": bad_name}, headers=AUTH).status_code == 422
    not_a_report = {**body, "name": "broken", "report": {"benchmark": "humaneval"}}
    assert client.post("/v1/reports", json=not_a_report, headers=AUTH).status_code == 422
    only_report = client.post("/v1/reports", json={"name": "no-tasks", "report": body["report"]}, headers=AUTH)
    assert only_report.status_code == 201
    assert client.get("/v1/reports/no-tasks", headers=AUTH).json()["has_tasks"] is False
    assert sorted(p.name for p in reports.iterdir()) == ["from-gpu", "no-tasks", "run-a"]  # no staging left behind


def test_an_upload_needs_a_reports_directory_and_fits_the_caps(tmp_path: Path, reports: Path) -> None:
    body = {"name": "x", "report": json.loads((reports / "run-a" / "report.json").read_text())}
    bare = TestClient(create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite", api_token=TOKEN)))
    refused = bare.post("/v1/reports", json=body, headers=AUTH)
    assert refused.status_code == 404 and "--reports" in refused.json()["detail"]
    small = TestClient(create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite", api_token=TOKEN,
                                              reports_dir=reports, max_report_bytes=1024)))
    tasks = [json.loads(line) for line in (reports / "run-a" / "tasks.jsonl").read_text().splitlines()] * 10
    too_big = small.post("/v1/reports", json={**body, "tasks": tasks}, headers=AUTH)
    assert too_big.status_code == 413 and "SEMCODER_MAX_REPORT_BYTES" in too_big.json()["detail"]
    assert not (reports / "x").exists()
