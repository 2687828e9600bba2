"""The eval report page (`#/reports/<name>`) in a real headless chromium, for a real `semcoder eval --out` folder.

The folder is produced here, on CPU: `semcoder eval humaneval --model URL --refine-rounds 2 --n 2` against a
scripted model behind the real OpenAI-compatible test server (tests/models/openai_test_server.py), scored in the
real sandbox, exactly as tests/evals/test_refine_run.py runs it. The viewer's server (conftest.py) is started with
`--reports DIR` and the folder is written into DIR.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from api_helpers import AUTH, Server
from cdp import Browser
from click.testing import CliRunner
from test_viewer import MAIN, js, open_page

from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from evals.cli import eval_command
from evals.loaders import load_humaneval

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from openai_test_server import OpenAITestServer

HOSTILE = "<img id=pwned src=x onerror=document.title='pwned'>"
HUMANEVAL = {task.task_id: task for task in load_humaneval()[:5]}
WRONG = {  # task -> a wrong body
    "HumanEval/0": "    return False\n",
    "HumanEval/2": f"    {HOSTILE!r}\n    return number\n",
}


def _program(task_id: str, body: str) -> str:
    return HUMANEVAL[task_id].prompt + body


class ScriptedModel:
    """HumanEval/0: both samples wrong, fixed by the first refinement. HumanEval/2: sample 0 wrong (with markup in
    it), sample 1 right; its refinement stays wrong. HumanEval/4: both samples right."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            prompt = request.prompt or ""
            task_id = next(t for t, task in HUMANEVAL.items() if f"def {task.entry_point}(" in prompt)
            task = HUMANEVAL[task_id]
            if prompt.startswith("Debug and Refine"):
                body = task.canonical_solution if task_id == "HumanEval/0" else WRONG.get(task_id, "    pass\n")
                texts = [f"### Root Cause Analysis\nwrong\n[Refined]\n```python\n{_program(task_id, body)}\n```\n"
                         "[/Refined]"]
            else:
                wrong = WRONG.get(task_id)
                bodies = {"HumanEval/0": [wrong, wrong], "HumanEval/2": [wrong, task.canonical_solution]}.get(
                    task_id, [task.canonical_solution] * 2)
                texts = [_program(task_id, body) + "```" for body in bodies[:request.params.n]]
            results.append(GenerationResult(completions=[Completion(text=t, finish_reason="stop") for t in texts],
                                            usage=Usage(prompt_tokens=1, completion_tokens=1)))
        return results

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def report_dir(reports_root: Path) -> Iterator[Path]:
    """A real report folder: generation, scoring and two refinement rounds, under the server's --reports DIR."""
    server = OpenAITestServer(ScriptedModel(), "scripted").start()
    out = reports_root / "humaneval-scripted"
    try:
        result = CliRunner().invoke(eval_command, [
            "humaneval", "--model", server.url, "--model-name", server.model_name, "--out", str(out),
            "--tasks", "HumanEval/0", "--tasks", "HumanEval/2", "--tasks", "HumanEval/4", "--n", "2",
            "--refine-rounds", "2", "--workers", "2", "--dialect", "semcoder", "--quiet"], catch_exceptions=False)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    yield out


def test_the_report_page_shows_pass_at_1_per_round_the_task_grid_and_a_failing_sample(
        browser: Browser, server: Server, report_dir: Path, artifacts: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    tasks = [json.loads(line) for line in (report_dir / "tasks.jsonl").read_text().splitlines()]
    assert [r["pass_at_1"] for r in report["rounds"]] == [0.5, 5 / 6, 5 / 6]  # the script's outcome, checked first

    open_page(browser, server, "#/")  # the runs page links the report
    link = browser.wait_for("document.querySelector('#reports-table tr[data-report=\"humaneval-scripted\"] a') && "
                            "document.querySelector('#reports-table tr[data-report=\"humaneval-scripted\"] a')"
                            ".getAttribute('href')", what="the report in the runs page's list")
    assert link == "#/reports/humaneval-scripted"
    browser.evaluate(f"location.hash = {js(link)}; true")
    browser.wait_for(f"{MAIN}.dataset.page === 'report' && {MAIN}.dataset.loaded === '1'", what="the report page")

    # the chart: one point per round, at the report's pass@1, labelled with it; the table says the same
    points = browser.evaluate("[...document.querySelectorAll('#passk-chart g.point')].map(g => ({round: "
                              "Number(g.dataset.round), pass: Number(g.dataset.pass), "
                              "label: g.querySelector('.point-label').textContent}))")
    assert [(p["round"], p["pass"]) for p in points] == [(r["round"], r["pass_at_1"]) for r in report["rounds"]]
    assert [p["label"] for p in points] == [f"{100 * r['pass_at_1']:.1f}%" for r in report["rounds"]] == \
        ["50.0%", "83.3%", "83.3%"]
    heights = browser.evaluate("[...document.querySelectorAll('#passk-chart g.point circle')]"
                               ".map(c => Number(c.getAttribute('cy')))")
    assert heights[0] > heights[1] == heights[2]  # higher pass@1 is drawn higher up
    # pass@k beside it for k > 1 the samples allow: n = 2 gives pass@2 (a task counts once any sample solves it)
    assert [r["pass_at_k"] for r in report["rounds"]] == [{"1": 0.5, "2": 2 / 3}, {"1": 5 / 6, "2": 1.0},
                                                          {"1": 5 / 6, "2": 1.0}]
    second = browser.evaluate("[...document.querySelectorAll('#passk-chart g.point-k')].map(g => "
                              "[Number(g.dataset.k), Number(g.dataset.round), Number(g.dataset.pass)])")
    assert second == [[2, r["round"], r["pass_at_k"]["2"]] for r in report["rounds"]]
    table = browser.evaluate("[...document.querySelectorAll('#passk-table tbody tr')].map(r => [...r.cells]"
                             ".map(c => c.textContent))")
    assert browser.evaluate("[...document.querySelectorAll('#passk-table th')].map(h => h.textContent)") == \
        ["Round", "pass@1", "pass@2", "Solved tasks", "Refined samples"]
    assert table == [[str(r["round"]), f"{100 * r['pass_at_1']:.1f}%", f"{100 * r['pass_at_k']['2']:.1f}%",
                      str(r["solved_tasks"]), str(r["refined_samples"])] for r in report["rounds"]]

    # the grid: task x round, with the outcome as a class and as text
    grid = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#task-grid tr.task')].map(r => "
                            "[r.dataset.task, [...r.querySelectorAll('td.cell')].map(c => [c.dataset.outcome, "
                            "c.textContent, getComputedStyle(c).backgroundColor])]))")
    assert {task: [cell[:2] for cell in cells] for task, cells in grid.items()} == {
        "HumanEval/0": [["fail", "0/2"], ["pass", "2/2"], ["pass", "2/2"]],
        "HumanEval/2": [["partial", "1/2"], ["partial", "1/2"], ["partial", "1/2"]],
        "HumanEval/4": [["pass", "2/2"], ["pass", "2/2"], ["pass", "2/2"]]}
    assert grid["HumanEval/0"][0][2] != grid["HumanEval/0"][1][2]  # fail and pass are colored apart
    expected_cells = {t["task_id"]: [f"{sum(s['passed'] for s in r['samples'])}/{len(r['samples'])}"
                                     for r in t["rounds"]] for t in tasks}
    assert {task: [cell[1] for cell in cells] for task, cells in grid.items()} == expected_cells

    # a task's samples: the generation next to the failing input the next round showed the model
    browser.evaluate("document.querySelector('#task-grid tr[data-task=\"HumanEval/0\"] td.cell[data-round=\"0\"]')"
                     ".click(); true")
    browser.wait_for("document.getElementById('report-task').dataset.task === 'HumanEval/0' && "
                     "document.querySelector('#report-task .sample') !== null", what="HumanEval/0's samples")
    sample = browser.evaluate("""(() => {
        const s = document.querySelector('#report-task .task-round[data-round="0"] .sample[data-sample="0"]');
        return {program: s.querySelector('pre.program').textContent, outcome: s.querySelector('.outcome').textContent,
                failing: s.querySelector('pre.failing-input').textContent};
    })()""")
    written = tasks[0]["rounds"][0]["samples"][0]
    assert sample["program"] == written["program"] and "return False" in sample["program"]
    assert sample["outcome"] == "fails"
    assert written["failing_input"] == {"call": "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)",
                                        "expected": "True"}
    assert sample["failing"] == ("retv = has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)\n"
                                 "assert retv == True")

    # untrusted text (a program with markup in it) is shown as text
    browser.evaluate("document.querySelector('#task-grid tr[data-task=\"HumanEval/2\"] button.task-link').click(); true")
    browser.wait_for("document.getElementById('report-task').dataset.task === 'HumanEval/2'", what="HumanEval/2")
    shown = browser.evaluate("document.querySelector('#report-task .task-round[data-round=\"0\"] pre.program').textContent")
    assert HOSTILE in shown
    assert browser.evaluate("document.querySelectorAll('#report-task .task-round').length") == 3  # every round
    assert browser.evaluate("document.getElementById('pwned') === null && document.title !== 'pwned'")
    print("screenshot:", browser.screenshot(artifacts / "report.png"))


def test_a_report_uploaded_from_the_page_is_kept_and_opens(browser: Browser, server: Server, report_dir: Path,
                                                           reports_root: Path, tmp_path: Path, artifacts: Path) -> None:
    """The folder's two files, chosen in the page's file input (as a person picks them), become a report page."""
    elsewhere = tmp_path / "made-on-a-gpu-box"
    elsewhere.mkdir()
    for name in ("report.json", "tasks.jsonl"):
        (elsewhere / name).write_bytes((report_dir / name).read_bytes())
    open_page(browser, server, "#/")
    browser.wait_for("document.getElementById('upload-files') !== null", what="the upload form")

    def choose_and_submit(name: str) -> None:
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector="#upload-files")["nodeId"]
        browser.call("DOM.setFileInputFiles", nodeId=node,
                     files=[str(elsewhere / "report.json"), str(elsewhere / "tasks.jsonl")])
        browser.evaluate(f"document.getElementById('upload-name').value = {js(name)}; "
                         "document.getElementById('upload-form').requestSubmit(); true")

    choose_and_submit("uploaded-he")
    browser.wait_for(f"{MAIN}.dataset.page === 'report' && {MAIN}.dataset.report === 'uploaded-he' && "
                     f"{MAIN}.dataset.loaded === '1'", what="the uploaded report's page")
    kept = reports_root / "uploaded-he"
    assert (kept / "tasks.jsonl").read_text() == (report_dir / "tasks.jsonl").read_text()
    report = json.loads((report_dir / "report.json").read_text())
    points = browser.evaluate("[...document.querySelectorAll('#passk-chart g.point')].map(g => Number(g.dataset.pass))")
    assert points == [r["pass_at_1"] for r in report["rounds"]]
    assert browser.evaluate("document.querySelectorAll('#task-grid tr.task').length") == 3
    print("screenshot:", browser.screenshot(artifacts / "report-uploaded.png"))

    # the same name again: refused by the server, and the page says why; the kept report is unchanged
    before = (kept / "report.json").read_bytes()
    assert json.loads(before) == report
    open_page(browser, server, "#/")
    browser.wait_for("document.getElementById('upload-files') !== null", what="the upload form")
    choose_and_submit("uploaded-he")
    shown = browser.wait_for("document.getElementById('upload-status').className === 'error' && "
                             "document.getElementById('upload-status').textContent", what="the refusal")
    assert "409" in shown and "exists" in shown
    assert (kept / "report.json").read_bytes() == before


def test_the_report_routes_read_what_the_eval_wrote(server: Server, report_dir: Path) -> None:
    """The shapes agree: the folder semcoder eval wrote, read back through the API, is the same data."""
    with httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
        listed = client.get("/v1/reports").json()
        assert listed["configured"] is True
        [entry] = [e for e in listed["reports"] if e["name"] == report_dir.name]
        assert entry["report"] == json.loads((report_dir / "report.json").read_text())
        detail = client.get(f"/v1/reports/{report_dir.name}").json()
        assert detail["has_tasks"] and [t["task_id"] for t in detail["tasks"]] == \
            ["HumanEval/0", "HumanEval/2", "HumanEval/4"]
        task = client.get(f"/v1/reports/{report_dir.name}/task", params={"task_id": "HumanEval/2"}).json()
        [written] = [json.loads(line) for line in (report_dir / "tasks.jsonl").read_text().splitlines()
                     if json.loads(line)["task_id"] == "HumanEval/2"]
        assert task == written
