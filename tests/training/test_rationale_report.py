"""scripts/rationale_experiment.py's report on a results folder written here: three formats, two data seeds, two
training seeds, per-task verdicts in the shape `semcoder eval --model` writes them (agent/eval_report.py)."""

from __future__ import annotations

import importlib
import json
import random
import sys
from pathlib import Path

import pytest

from agent.eval_report import SampleOutcome, TaskOutcome, TaskRound
from evals.paired import mcnemar_exact

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
experiment = importlib.import_module("rationale_experiment")

FORMATS = ["monologue", "cwm", "none"]
RATE = {"monologue": 0.8, "cwm": 0.5, "none": 0.2}
TASKS = 40


def _write_eval(folder: Path, verdicts: dict[str, bool]) -> None:
    folder.mkdir(parents=True)
    tasks = [TaskOutcome(task_id=task, rounds=[TaskRound(round=0, samples=[
        SampleOutcome(program="f(1)", passed=ok)])]) for task, ok in verdicts.items()]
    (folder / "tasks.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    (folder / "report.json").write_text(json.dumps({"rounds": [{"pass_at_1": sum(verdicts.values()) / TASKS}]}))


@pytest.fixture
def results(tmp_path: Path) -> tuple[Path, dict[tuple[str, str, str], dict[str, bool]]]:
    work = tmp_path / "results"
    plan = {"steps": 7, "row_tokens": 32768, "formats": FORMATS, "data_seeds": [0, 1], "train_seeds": [0, 1]}
    work.mkdir()
    (work / "plan.json").write_text(json.dumps(plan))
    (work / "data_stats.json").write_text(json.dumps({
        str(seed): {"manifest": {"per_format": {"cwm": {"rationale_chars": {"mean": 1000.0 + 1000 * seed}}}},
                    "formats": {fmt: {"records": 10, "exec_records": 8,
                                                        "rationale_tokens_per_record": {"monologue": 300, "cwm": 500,
                                                                                        "none": 0}[fmt],
                                                        "response_tokens_per_record": 20.0} for fmt in FORMATS}}
        for seed in (0, 1)}))
    rng = random.Random(5)
    verdicts = {}
    for fmt in FORMATS:
        for ds in (0, 1):
            for ts in (0, 1):
                name = f"{fmt}_d{ds}_t{ts}"
                folder = work / "sft" / name
                folder.mkdir(parents=True)
                (folder / "summary.json").write_text(json.dumps({"steps": 7, "tokens": 1000 + ds, "final_loss": 1.5}))
                (folder / "metrics.jsonl").write_text("".join(json.dumps({"target_tokens": 10}) + "\n" for _ in range(7)))
                for bench in ("heldout-o", "cruxeval-i"):
                    if (name, bench) == ("cwm_d1_t1", "cruxeval-i"):
                        continue  # a run that never came back: reported as missing, not counted
                    solved = {f"t{i}": rng.random() < RATE[fmt] for i in range(TASKS)}
                    if (name, bench) == ("none_d0_t0", "cruxeval-i"):  # a tie with cwm in that run
                        solved = dict(verdicts[("cwm_d0_t0", bench, "d0t0")])
                    verdicts[(name, bench, f"d{ds}t{ts}")] = solved
                    _write_eval(work / "evals" / name / bench, solved)
    return work, verdicts


def test_pooled_and_per_run_mcnemar_pair_the_same_tasks_of_the_same_runs(results, tmp_path: Path) -> None:
    work, verdicts = results
    experiment.main(["report", "--work", str(work), "--out", str(tmp_path / "out"), "--bootstrap", "300"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["benchmarks"] == ["heldout-o", "cruxeval-i"]
    assert len(report["pairs"]) == 2 * 3
    runs = ["d0t0", "d0t1", "d1t0", "d1t1"]
    for pair in report["pairs"]:
        bench, a, b = pair["benchmark"], pair["a"], pair["b"]
        only_a = only_b = tasks = 0
        for run in runs:
            va, vb = verdicts.get((f"{a}_{run[:2]}_{run[2:]}", bench, run)), verdicts.get(
                (f"{b}_{run[:2]}_{run[2:]}", bench, run))
            result = pair["per_run"][run]
            if va is None or vb is None:
                assert result is None
                continue
            expected = (sum(va[t] and not vb[t] for t in va), sum(vb[t] and not va[t] for t in va))
            assert (result["only_a"], result["only_b"]) == expected
            assert result["p_value"] == pytest.approx(mcnemar_exact(*expected))
            only_a, only_b, tasks = only_a + expected[0], only_b + expected[1], tasks + TASKS
        pooled = pair["pooled"]
        assert (pooled["only_a"], pooled["only_b"], pooled["tasks"]) == (only_a, only_b, tasks)
        assert pooled["p_value"] == pytest.approx(mcnemar_exact(only_a, only_b))
    mono_none = next(p for p in report["pairs"] if p["benchmark"] == "heldout-o" and {p["a"], p["b"]} == {
        "monologue", "none"})
    assert mono_none["pooled"]["p_value"] < 1e-6  # 0.8 against 0.2 over 160 paired tasks


def test_format_rows_aggregate_runs_with_intervals_and_token_counts(results, tmp_path: Path) -> None:
    work, verdicts = results
    experiment.main(["report", "--work", str(work), "--out", str(tmp_path / "out"), "--bootstrap", "300"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    mono = report["formats"]["monologue"]["scores"]["heldout-o"]
    rates = [sum(verdicts[(f"monologue_d{d}_t{t}", "heldout-o", f"d{d}t{t}")].values()) / TASKS
             for d in (0, 1) for t in (0, 1)]
    assert mono["mean"] == pytest.approx(sum(rates) / 4)
    assert (mono["min"], mono["max"]) == (min(rates), max(rates))
    assert mono["bootstrap95"][0] < mono["mean"] < mono["bootstrap95"][1]
    assert mono["wilson95_pooled"][0] < mono["mean"] < mono["wilson95_pooled"][1]
    assert report["formats"]["cwm"]["scores"]["cruxeval-i"]["runs"] == 3
    assert report["formats"]["cwm"]["rationale_tokens_per_record"] == 500
    assert report["formats"]["none"]["loss_tokens"] == 70
    assert report["formats"]["monologue"]["steps"] == [7]
    assert report["orderings"]["heldout-o"]["d0t0"].startswith("monologue > ")
    assert report["orderings"]["cruxeval-i"]["d0t0"].endswith("cwm = none")
    assert report["formats"]["cwm"]["rationale_chars_per_record"] == 1500.0  # the manifest's, over both seeds
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| heldout-o | monologue vs none |" in text
    cwm_row = next(line for line in text.splitlines() if line.startswith("| cwm_d1_t1 |"))
    assert cwm_row.split(" | ")[2] == "-"  # its missing cruxeval-i run
    assert (tmp_path / "out" / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_wilson_interval_matches_the_closed_form() -> None:
    low, high = experiment.wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert experiment.wilson(0, 0) == (0.0, 0.0)

