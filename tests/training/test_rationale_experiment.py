"""scripts/rationale_experiment.py end to end on a CPU: a real (tiny) PyX run, the fixed held-out split, two data
seeds (`semcoder data rationale` per seed), the tiny model pretrained and fine-tuned per arm, every arm served
(scripts/cpu_openai_server.py) and evaluated on the held-out set and CRUXEval, the report. Nothing is scripted.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

from agent.prompts import PyXRecord
from evals.loaders import load_cruxeval

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
experiment = importlib.import_module("rationale_experiment")

pytestmark = pytest.mark.slow  # minutes: a PyX run, 5 tiny trainings, 4 CPU servers, 8 small evals

FORMATS = ["monologue", "none"]
BENCHMARKS = ["heldout-i", "cruxeval-o"]  # both sources, both directions
HOLDOUT = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """All five phases once; sft first only for data seed 0's arms, then for all (the resume check)."""
    root = tmp_path_factory.mktemp("rationale")
    common = ["--work", str(root / "work"), "--data", str(root / "data"), "--formats", ",".join(FORMATS),
              "--data-seeds", "0,1", "--train-seeds", "0", "--size", "tiny", "--device", "cpu", "--server", "cpu"]
    experiment.main(["data", *common, "--out", str(root / "out_data"), "--generated", "16", "--holdout",
                     str(HOLDOUT), "--train-fraction", "0.75", "--data-workers", "2"])
    # The device phases read the carried archive, as on the GPU machine.
    device = [*common[:2], "--data", str(root / "data.tgz"), *common[4:]]
    experiment.main(["pretrain", *device, "--out", str(root / "out_pretrain"), "--pretrain-seconds", "3"])
    experiment.main(["sft", *device, "--out", str(root / "out_sft_none"), "--sft-steps", "3", "--max-seconds", "0"])
    experiment.main(["sft", *device, "--out", str(root / "out_sft0"), "--arms", "*_d0_*"])
    first = {p.parent.name: p.stat().st_mtime_ns for p in (root / "work" / "sft").glob("*/summary.json")}
    experiment.main(["sft", *device, "--out", str(root / "out_sft")])
    experiment.main(["evaluate", *device, "--out", str(root / "out_eval"), "--crux-limit", "2",
                     "--heldout-limit", "3", "--max-tokens", "24", "--workers", "1", "--eval-jobs", "4",
                     "--servers-per-gpu", "4", "--benchmarks", ",".join(BENCHMARKS)])
    experiment.main(["report", *device, "--out", str(root / "out_report"), "--bootstrap", "200"])
    return {"root": root, "first_sft": first}


def _arm_names() -> list[str]:
    return [f"{fmt}_d{seed}_t0" for seed in (0, 1) for fmt in FORMATS]


def test_every_arm_trained_the_same_steps_and_resuming_skips_finished_arms(run) -> None:
    root: Path = run["root"]
    work = root / "work"
    assert set(run["first_sft"]) == {name for name in _arm_names() if "_d0_" in name}
    summaries = {name: json.loads((work / "sft" / name / "summary.json").read_text()) for name in _arm_names()}
    assert {s["steps"] for s in summaries.values()} == {3}
    assert json.loads((work / "plan.json").read_text())["steps"] == 3
    for name, mtime in run["first_sft"].items():  # the second call kept data seed 0's arms as they were
        assert (work / "sft" / name / "summary.json").stat().st_mtime_ns == mtime
    assert "2 of 4 selected arms already trained (kept)" in (root / "out_sft" / "sft_table.txt").read_text()
    assert "0 of 2 selected arms already trained (kept)" in (root / "out_sft0" / "sft_table.txt").read_text()
    # --max-seconds 0: the first call fixed the plan (3 steps) but started no arm.
    assert "4 arms left for the next call" in (root / "out_sft_none" / "sft_table.txt").read_text()


def _shown_code(instruction: str) -> str | None:
    match = re.search(r"PYTHON\]\n(.*?)\nassert f\(", instruction, re.S)
    if match is None:
        return None
    return re.sub(r" # \[L\d+\]$", "", match.group(1), flags=re.M).replace("'", '"').strip()


def test_no_arm_trained_on_a_held_out_program(run) -> None:
    root: Path = run["root"]
    held_rows = load_cruxeval(root / "data" / "heldout" / "exec_o.jsonl")
    assert len(held_rows) == HOLDOUT
    held = {row.code.replace("'", '"').strip() for row in held_rows}
    held_keys = {row.task_id.removeprefix("pyx/") for row in held_rows}
    shown = 0
    for name in _arm_names():
        arm = json.loads((root / "work" / "sft" / name / "arm.json").read_text())
        for line in Path(arm["data"]).read_text().splitlines():
            record = PyXRecord.model_validate_json(line)
            code = _shown_code(record.fwd_mnl or record.bwd_mnl or "")
            if code is not None:
                shown += 1
                assert code not in held, (name, code)
        seed_programs = json.loads((root / "data" / f"seed{arm['data_seed']}" / "programs.json").read_text())
        assert not held_keys & set(seed_programs)
    assert shown > 0
    # The two data seeds drew different training programs; the held-out set is one for both.
    drawn = [set(json.loads((root / "data" / f"seed{s}" / "programs.json").read_text())) for s in (0, 1)]
    assert drawn[0] != drawn[1]


def test_the_report_has_every_arm_every_pair_and_the_token_counts(run) -> None:
    root: Path = run["root"]
    report = json.loads((root / "out_report" / "report.json").read_text())
    assert set(report["arms"]) == set(_arm_names())
    for arm in report["arms"].values():
        assert set(arm["scores"]) == set(BENCHMARKS)
        assert arm["scores"]["heldout-i"]["tasks"] == 3 and arm["scores"]["cruxeval-o"]["tasks"] == 2
    assert {(p["benchmark"], p["a"], p["b"]) for p in report["pairs"]} == {
        (bench, "monologue", "none") for bench in BENCHMARKS}
    for pair in report["pairs"]:
        assert 0.0 <= pair["pooled"]["p_value"] <= 1.0
        assert pair["pooled"]["tasks"] == 2 * (3 if pair["benchmark"].startswith("heldout") else 2)
        assert set(pair["per_run"]) == {"d0t0", "d1t0"}
    formats = report["formats"]
    assert formats["none"]["rationale_tokens_per_record"] == 0
    assert formats["monologue"]["rationale_tokens_per_record"] > 0
    assert all(f["tokens_trained"] > 0 and f["steps"] == [3] for f in formats.values())
    text = (root / "out_report" / "report.md").read_text()
    for name in _arm_names():
        assert f"| {name} |" in text
    assert "monologue vs none" in text
    assert (root / "out_report" / "report.png").stat().st_size > 0
    # Every per-task answer came back with the evaluate call, so pairing works from the bundle alone.
    assert (root / "out_eval" / "evaluate_bundle.tgz").exists()


def test_the_report_runs_on_the_bundle_that_came_back(run, tmp_path: Path) -> None:
    import tarfile

    root: Path = run["root"]
    with tarfile.open(root / "out_eval" / "evaluate_bundle.tgz") as tar:
        tar.extractall(tmp_path, filter="data")
    experiment.main(["report", "--work", str(tmp_path / "results"), "--out", str(tmp_path / "out"),
                     "--bootstrap", "100"])
    here = json.loads((tmp_path / "out" / "report.json").read_text())
    there = json.loads((root / "out_report" / "report.json").read_text())
    assert here["pairs"] == there["pairs"]
