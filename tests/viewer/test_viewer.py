"""The run viewer at `/` in a real headless chromium, against a real `semcoder serve` with a token.

Every wait polls the DOM for the condition under test (generous timeouts, no sleeps as assertions).
"""

from __future__ import annotations

import json
import shutil

import httpx
from api_helpers import AUTH, GRADE_TESTS, GRADES, ROOT, TOKEN, Server, grade_request, wait_for
from cdp import Browser

MAIN = "document.getElementById('main')"
# Markup in the code under test and in a test: the page must show it as text, never run it.
HOSTILE = "<img id=pwned src=x onerror=document.title='pwned'>"
FIXED_GRADES = GRADES.replace("score > 90", "score >= 90").replace(
    "def grade(score):\n", f"def grade(score):\n    {HOSTILE!r}\n")
# A test no mutant can fix (the run goes on step after step), slow enough that a run outlasts a loaded machine's
# page load.
SLOW_TESTS = GRADE_TESTS + f"""

def test_impossible():
    import time
    time.sleep(1.5)
    assert grade(95) == {HOSTILE!r}
"""


def js(value: object) -> str:
    return json.dumps(value)


def open_page(browser: Browser, server: Server, fragment: str = "#/") -> None:
    """Navigates to the viewer signed in: the token is put where the sign-in form keeps it (this tab's session
    storage) before the page loads, so no test depends on which test signed in first."""
    browser.navigate(f"{server.url}/")
    browser.evaluate(f"sessionStorage.setItem('semcoder.token', {js(TOKEN)}); true")
    browser.navigate(f"{server.url}/{fragment}")
    browser.wait_for(f"{MAIN}.dataset.page && {MAIN}.dataset.page !== 'login'", what="the page, signed in")


def sign_in(browser: Browser, token: str) -> None:
    browser.evaluate(f"document.getElementById('token').value = {js(token)}; "
                     "document.getElementById('login').requestSubmit(); true")


def rows_of(browser: Browser) -> dict[str, str]:
    return browser.evaluate("Object.fromEntries([...document.querySelectorAll('#runs-body tr.run')]"
                            ".map(r => [r.dataset.runId, r.dataset.status]))")


def test_the_runs_list_asks_for_the_token_and_follows_runs_live(browser, server, artifacts):
    index = httpx.get(f"{server.url}/", timeout=30)
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert httpx.get(f"{server.url}/v1/repairs", timeout=30).status_code == 401  # the data needs the token

    browser.navigate(f"{server.url}/")
    browser.evaluate("sessionStorage.clear(); location.reload(); true")
    browser.wait_for(f"{MAIN}.dataset.page === 'login'", what="the sign-in form")
    sign_in(browser, "wrong-token")
    assert "refused" in browser.wait_for("document.getElementById('login-error').textContent", what="a refusal")
    assert browser.evaluate("sessionStorage.getItem('semcoder.token')") is None
    sign_in(browser, TOKEN)
    browser.wait_for(f"{MAIN}.dataset.page === 'runs' && {MAIN}.dataset.loaded === '1'", what="the runs list")
    assert browser.evaluate("sessionStorage.getItem('semcoder.token')") == TOKEN

    with server.client() as client:  # a run submitted while the page is open appears, and finishes, on its own
        run_id = client.post("/v1/repairs", json=grade_request(), headers=AUTH).json()["id"]
        browser.wait_for(f"{js(run_id)} in Object.fromEntries([...document.querySelectorAll('#runs-body tr.run')]"
                         ".map(r => [r.dataset.runId, 1]))", what="the new run in the list")
        final = wait_for(client, run_id, {"fixed", "not_fixed", "error"})
    assert final["status"] == "fixed", final
    browser.wait_for(f"document.querySelector('#runs-body tr[data-run-id={js(run_id)}]').dataset.status === 'fixed'",
                     what="the run's row to turn fixed")
    row = browser.evaluate(f"[...document.querySelector('#runs-body tr[data-run-id={js(run_id)}]').cells]"
                           ".map(c => c.textContent)")
    assert row[:7] == [run_id, "fixed", "http", "function", final["target"], final["model"],
                       str(final["iterations"])], row
    assert final["model"] == "none"  # grade_request() asks for no model: the mutation patcher fixed it
    assert row[7] == f"{final['tests_passed']}/{final['tests_total']}" == "4/4", row
    print("screenshot:", browser.screenshot(artifacts / "runs.png"))


def test_a_finished_inventory_repair_shows_inline_values_candidates_and_the_diff(browser, server, allowed_root,
                                                                                  artifacts):
    project = allowed_root / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", project)
    with server.client() as client:
        accepted = client.post("/v1/repairs", json={"project_path": str(project), "model": "none",
                                                    "show_trace": True}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        final = wait_for(client, run_id, {"fixed", "not_fixed", "error"})
    assert final["status"] == "fixed", final

    open_page(browser, server, f"#/runs/{run_id}")
    browser.wait_for(f"{MAIN}.dataset.done === '1' && document.querySelector('#trace-code') && "
                     "document.getElementById('run-status').textContent === 'fixed'", what="the finished run")

    assert browser.evaluate("[...document.querySelectorAll('#timeline li.step')].map(li => li.dataset.node)") == \
        ["execute", "trace", "patch", "execute", "finish"]
    assert "inventory.py:6" in browser.evaluate("document.querySelector('#suspects-table tbody tr').textContent")
    assert browser.evaluate("document.getElementById('focus-test').textContent") == \
        "test_inventory.py::test_restock_at_threshold"
    assert browser.evaluate("document.getElementById('focus-call').textContent") == \
        "restock_list({'apples': 3, 'bread': 10, 'milk': 5}, 5)"
    assert browser.evaluate("document.getElementById('focus-expected').textContent") == "['apples', 'milk']"

    # the failing line, with the traced values inline: the last state, what it returned, and on click every state
    line = browser.evaluate("""(() => {
        const row = [...document.querySelectorAll('#trace-code tr.line')]
            .find(r => r.querySelector('.src').textContent.includes('return sorted('));
        return {number: row.dataset.line, code: row.querySelector('.src').textContent,
                inline: row.querySelector('.inline').textContent,
                states: [...row.querySelectorAll('ol.states li')].map(li => li.textContent),
                hidden: row.querySelector('ol.states').hidden};
    })()""")
    assert line["number"] == "6" and "# [STATE" not in line["code"], line
    assert line["code"].strip() == "return sorted(item for item, count in stock.items() if count < threshold)"
    assert line["inline"].startswith("item = milk, count = 5") and 'returns ["apples"]' in line["inline"], line
    assert line["states"] == ["STATE-0: item = apples, count = 3", "STATE-1: item = bread, count = 10",
                              "STATE-2: item = milk, count = 5", 'returns ["apples"]'], line
    assert line["hidden"] is True
    browser.evaluate("document.querySelector('#trace-code tr[data-line=\"6\"]').click(); true")
    assert browser.evaluate("document.querySelector('#trace-code tr[data-line=\"6\"] ol.states').hidden") is False
    signature = browser.evaluate("document.querySelector('#trace-code tr[data-line=\"4\"] .inline').textContent")
    assert signature.startswith("input: stock = {'apples': 3, 'bread': 10, 'milk': 5}, threshold = 5"), signature

    candidates = browser.evaluate("[...document.querySelectorAll('#candidates .candidate')].map(c => "
                                  "({origin: c.querySelector('.origin').textContent, "
                                  "outcome: c.querySelector('.outcome').textContent, "
                                  "diff: c.querySelector('pre.diff').textContent}))")
    by_origin = {c["origin"]: c for c in candidates}
    assert set(by_origin) == {f"mutation inventory.py line 6: < -> {op}" for op in ("<=", ">", ">=")}, candidates
    fix = by_origin["mutation inventory.py line 6: < -> <="]
    assert fix["outcome"] == "passes 5/5" and "count <= threshold" in fix["diff"], fix
    assert by_origin["mutation inventory.py line 6: < -> >"]["outcome"] == "3/5 pass, 1 regression(s)"

    shown = browser.evaluate("document.getElementById('final-diff').textContent")
    assert shown.strip() == final["diff"].strip()
    assert "+    return sorted(item for item, count in stock.items() if count <= threshold)" in shown
    browser.evaluate("document.getElementById('copy-diff').click(); true")
    assert browser.wait_for("document.getElementById('copy-note').textContent", what="the copy button's note") in (
        "copied", "copy failed: select the text instead")
    print("screenshot:", browser.screenshot(artifacts / "run-inventory.png"))


def test_a_live_runs_timeline_grows_while_it_runs_and_shows_hostile_text_as_text(browser, server, artifacts):
    slow = {"code": FIXED_GRADES, "tests": SLOW_TESTS, "model": "none", "mutants_per_step": 1,
            "max_iterations": 40, "show_trace": True}
    steps = "document.querySelectorAll('#timeline li.step').length"
    with server.client() as client:
        accepted = client.post("/v1/repairs", json=slow, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        try:
            wait_for(client, run_id, {"running"})
            open_page(browser, server, f"#/runs/{run_id}")
            first = browser.wait_for(f"{MAIN}.dataset.runId === {js(run_id)} && {steps}", what="a first step")
            grown = browser.wait_for(f"{steps} > {first} && {steps}", what=f"more than {first} steps")
            assert grown > first
            assert browser.evaluate(f"{MAIN}.dataset.done") is None  # it grew while the run was going
            assert browser.evaluate("document.getElementById('run-status').textContent") in ("running", "queued")
            code = browser.wait_for("document.querySelector('#trace-code') && "
                                    "document.querySelector('#trace-code').textContent", what="a traced focus")
            assert HOSTILE in code
            assert browser.evaluate("document.getElementById('pwned') === null && document.title !== 'pwned'")
            print("screenshot:", browser.screenshot(artifacts / "run-live.png"))
        finally:
            client.post(f"/v1/repairs/{run_id}/cancel", headers=AUTH)
    browser.wait_for(f"{MAIN}.dataset.done === '1' && "
                     "document.getElementById('run-status').textContent === 'cancelled'", what="the cancel to show")
    assert browser.evaluate(f"{steps}") >= grown
    assert browser.evaluate("document.getElementById('pwned') === null && document.title !== 'pwned'")
    print("screenshot:", browser.screenshot(artifacts / "run-cancelled.png"))


def test_the_viewer_files_are_package_data(server):
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert all(f'"*.{ext}"' in pyproject for ext in ("html", "js", "css"))
    for name in ("viewer.js", "viewer.css"):
        served = httpx.get(f"{server.url}/viewer/{name}", timeout=30)
        assert served.status_code == 200 and served.content == (ROOT / "agent/api/viewer" / name).read_bytes()
    assert httpx.get(f"{server.url}/viewer/..%2Fpages.py", timeout=30).status_code == 404
    assert httpx.get(f"{server.url}/viewer/index.html", timeout=30).status_code == 404
