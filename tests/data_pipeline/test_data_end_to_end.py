"""A small corpus end to end, teacher-free, through the `semcoder data` CLI: records, resumption, PyX-R."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import sandbox
from agent.parsing import parse_monologue, parse_refine_response
from agent.prompts import PyXRecord, render_pyx, render_pyxr
from evals.loaders import load_cruxeval
from training.data.decontam import BenchmarkIndex
from training.data.generator import generate_program
from training.data.loaders import DataError, read_pyx, read_pyxr
from training.data_cli import data_group


def _cli(*args: str) -> str:
    result = CliRunner().invoke(data_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def pyx_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("pyx")
    corpus = Path(__file__).resolve().parent / "corpus"
    summary = _cli("pyx", "--source", str(corpus), "--generated", "16", "--shard-size", "8", "--out", str(out))
    return out, summary


def _metas(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.meta.jsonl").read_text().splitlines()]


def test_pyx_records_have_the_exact_schema_and_say_where_they_came_from(pyx_dir: tuple[Path, str]) -> None:
    out, summary = pyx_dir
    rows = [json.loads(line) for line in (out / "pyx.jsonl").read_text().splitlines()]
    assert rows and all(list(row) == ["nl", "fwd_mnl", "bwd_mnl", "response"] for row in rows)
    records = read_pyx(out)
    metas = _metas(out, "pyx")
    assert len(records) == len(metas) == len(rows)
    assert {r.kind for r in records} == {"nl2code", "forward", "backward"}
    assert {m["origin"]["kind"] for m in metas} == {"corpus", "generator"}
    assert {m["monologue"] for m in metas if m["task"] != "nl2code"} == {"trace"}
    assert "textutil.py::slugify" in {m["origin"]["ref"] for m in metas}
    assert f"records kept: {len(records)}" in summary


def test_filter_drops_are_counted_by_reason(pyx_dir: tuple[Path, str]) -> None:
    out, summary = pyx_dir
    refs = {m["origin"]["ref"] for m in _metas(out, "pyx")}
    assert not {"textutil.py::distinct_letters", "pkg/mathish.py::spin_forever"} & refs
    assert re.search(r"execute:nondeterministic\s+1\b", summary)
    assert re.search(r"execute:no_valid_input_timeout\s+1\b", summary)
    for stage in ("decontaminate", "execute", "trace", "monologue"):
        assert re.search(rf"^{stage}\s+\d+\s+\d+\s+[\d.]+\s+\d+$", summary, re.M), summary


def test_monologue_answers_hold_when_run_in_the_sandbox(pyx_dir: tuple[Path, str]) -> None:
    out, _ = pyx_dir
    records = [r for r in read_pyx(out) if r.kind == "forward"][:6]
    for record in records:
        assert render_pyx(record).prompt.startswith("Simulate the Execution:")
        answer = parse_monologue(record.response, "forward", finish_reason="stop").answer
        code = re.sub(r" # \[L\d+\]$", "", record.fwd_mnl.split("[PYTHON]\n")[1].split("\nassert f(")[0], flags=re.M)
        result = sandbox.run(code + "\n" + answer.assertion + "\n")
        assert result.ok, (code, answer.assertion, result.stderr)


def test_dataset_on_disk_matches_the_jsonl(pyx_dir: tuple[Path, str]) -> None:
    from datasets import load_from_disk

    out, _ = pyx_dir
    dataset = load_from_disk(str(out / "pyx_dataset"))
    assert dataset.column_names == ["nl", "fwd_mnl", "bwd_mnl", "response"]
    assert [PyXRecord(**row) for row in dataset] == read_pyx(out)


def test_a_rerun_redoes_only_the_lost_shard(pyx_dir: tuple[Path, str]) -> None:
    out, _ = pyx_dir
    before = (out / "pyx.jsonl").read_text()
    kept = out / "shards" / "pyx-00000.jsonl"
    kept_mtime = kept.stat().st_mtime_ns
    (out / "shards" / "pyx-00001.stats.json").unlink()  # as if the run died while writing shard 1
    (out / "shards" / "pyx-00001.jsonl").write_text("{half a line")
    corpus = Path(__file__).resolve().parent / "corpus"
    _cli("pyx", "--source", str(corpus), "--generated", "16", "--shard-size", "8", "--out", str(out))
    assert (out / "pyx.jsonl").read_text() == before
    assert kept.stat().st_mtime_ns == kept_mtime


def test_pyxr_from_the_pyx_output(pyx_dir: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = pyx_dir
    summary = _cli("pyxr", "--pyx", str(out), "--out", str(tmp_path))
    records = read_pyxr(tmp_path)
    assert records and f"records kept: {len(records)}" in summary
    for record in records:
        assert record.fault.startswith("### Problem\n") and "### Failed Test\n```python\nretv = " in record.fault
        parsed = parse_refine_response(record.response, finish_reason="stop")
        assert set(parsed.sections) >= {"Execution Simulation", "Root Cause Analysis", "Bug Fixing"}
        assert render_pyxr(record).prompt.startswith("Debug and Refine the Code: You are given a a problem")
    assert all(m["bug"] for m in _metas(tmp_path, "pyx_r"))


def test_loaders_read_released_files_and_reject_bad_rows(tmp_path: Path) -> None:
    released = tmp_path / "pyx.jsonl"
    released.write_text(json.dumps({"nl": "", "fwd_mnl": "[PYTHON]...", "bwd_mnl": "", "response": "r"}) + "\n")
    assert read_pyx(released)[0].kind == "forward"
    (tmp_path / "pyx_r.jsonl").write_text(json.dumps({"fault": "### Problem", "response": "x"}) + "\n")
    assert read_pyxr(tmp_path / "pyx_r.jsonl")[0].fault == "### Problem"
    released.write_text(json.dumps({"nl": "a", "fwd_mnl": "b", "bwd_mnl": "", "response": "r"}) + "\n")
    with pytest.raises(DataError, match=r"pyx\.jsonl:1"):
        read_pyx(released)


def test_decontamination_catches_copies_and_renamed_copies() -> None:
    index = BenchmarkIndex.from_benchmarks()
    sample = load_cruxeval()[3]
    assert index.contamination(sample.code) == f"ngram:cruxeval/{sample.task_id}"
    renamed = sample.code.replace("def f(", "def g(").replace("text", "txt")
    assert index.contamination(renamed) is not None
    assert index.contamination(generate_program(1).code, generate_program(1).description) is None
