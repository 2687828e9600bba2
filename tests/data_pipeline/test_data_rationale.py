"""`semcoder data rationale`: the same PyX programs in four rationale formats, re-traced in the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.parsing import parse_answer
from agent.prompts import PyXRecord
from training.data.ablation import answer_only
from training.data_cli import data_group
from training.sft._config import DataSource
from training.sft._data import read_examples

FORMATS = ("monologue", "next", "cwm", "none")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(data_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _records(path: Path) -> list[PyXRecord]:
    return [PyXRecord.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pyx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyx")
    _cli("pyx", "--generated", "10", "--shard-size", "5", "--out", str(out), "--workers", "2")
    return out


@pytest.fixture(scope="module")
def arms(pyx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("arms")
    summary = _cli("rationale", str(pyx_dir), "--out", str(out), "--formats", ",".join(FORMATS))
    return out, summary


def test_every_format_has_the_same_programs_prompts_and_answers(pyx_dir: Path, arms: tuple[Path, str]) -> None:
    out, summary = arms
    files = {fmt: _records(out / f"{fmt}.jsonl") for fmt in FORMATS}
    original = _records(pyx_dir / "pyx.jsonl")
    counts = {len(records) for records in files.values()}
    assert counts == {len(original)}, summary  # generator programs re-trace exactly: nothing is dropped
    metas = {fmt: (out / f"{fmt}.meta.jsonl").read_text() for fmt in FORMATS}
    assert len(set(metas.values())) == 1 and metas["none"] == (pyx_dir / "pyx.meta.jsonl").read_text()
    monologues = 0
    for row in zip(*(files[fmt] for fmt in FORMATS), original, strict=True):
        by_format = dict(zip((*FORMATS, "original"), row, strict=True))
        prompts = {(r.nl, r.fwd_mnl, r.bwd_mnl) for r in row}
        assert len(prompts) == 1
        if row[0].kind == "nl2code":
            assert len({r.response for r in row}) == 1
            continue
        monologues += 1
        answers = {parse_answer(r.response, finish_reason="stop").assertion for r in row}
        assert len(answers) == 1
        assert by_format["monologue"] == by_format["original"]
        assert by_format["none"] == answer_only(by_format["original"])  # today's strip-monologue, exactly
        assert "[INPUT]" in by_format["next"].response and "[OUTPUT]" in by_format["next"].response
        assert by_format["next"].response.split("[/MONOLOGUE]")[0].count("def f(") == 1
        assert by_format["cwm"].response.startswith("<|frame_sep|><|call_sep|>{")
        assert "<|return_sep|><|action_sep|>" in by_format["cwm"].response
        assert "### Execution Simulation" not in by_format["cwm"].response + by_format["next"].response
    assert monologues >= 10


def test_manifest_counts_records_sizes_and_units(arms: tuple[Path, str]) -> None:
    out, _ = arms
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records_out"] == manifest["records_in"] and sum(manifest["dropped"].values()) == 0
    assert "str.split" in manifest["token_unit"]
    per = manifest["per_format"]
    assert {fmt: per[fmt]["records"] for fmt in FORMATS} == {fmt: manifest["records_out"] for fmt in FORMATS}
    assert per["none"]["rationale_chars"] == {"mean": 0.0, "median": 0.0}
    assert per["monologue"]["rationale_chars"]["mean"] > per["next"]["rationale_chars"]["mean"] > 0
    assert per["cwm"]["rationale_whitespace_tokens"]["median"] > 0
    assert per["none"]["response_chars"] < per["next"]["response_chars"]


def test_sft_reads_every_file_unchanged(arms: tuple[Path, str]) -> None:
    out, _ = arms
    for fmt in FORMATS:
        examples = read_examples(DataSource(path=out / f"{fmt}.jsonl"))
        prompts = [e.prompt for e in examples]
        assert prompts == [e.prompt for e in read_examples(DataSource(path=out / "none.jsonl"))]
        assert all(e.completion.endswith("[/ANSWER]") or e.completion.startswith("```python") for e in examples)


def test_a_record_too_long_for_one_format_leaves_every_file(arms: tuple[Path, str], pyx_dir: Path,
                                                             tmp_path: Path) -> None:
    full, _ = arms
    cwm_sizes = sorted(len(r.response) for r in _records(full / "cwm.jsonl") if r.kind != "nl2code")
    limit = cwm_sizes[len(cwm_sizes) // 2]  # about half of the records have a longer CWM rationale
    _cli("rationale", str(pyx_dir), "--out", str(tmp_path), "--max-rationale-chars", str(limit))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["records_out"] + sum(manifest["dropped"].values()) == manifest["records_in"]
    assert sum(manifest["dropped"].values()) > 0 and set(manifest["dropped"]) <= {
        f"too_long_{fmt}" for fmt in FORMATS}
    lengths = {len((tmp_path / f"{fmt}.jsonl").read_text().splitlines()) for fmt in FORMATS}
    assert lengths == {manifest["records_out"]}
    prompts = [{(r.fwd_mnl, r.bwd_mnl, r.nl) for r in _records(tmp_path / f"{fmt}.jsonl")} for fmt in FORMATS]
    assert all(p == prompts[0] for p in prompts)


def test_a_record_whose_answer_the_trace_contradicts_is_dropped(pyx_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    records = _records(pyx_dir / "pyx.jsonl")
    target = next(i for i, r in enumerate(records) if r.kind == "forward")
    answer = parse_answer(records[target].response, finish_reason="stop")
    forged = records[target].response.replace(answer.assertion, f"{answer.assertion.split('==')[0]}== 'forged'")
    records[target] = records[target].model_copy(update={"response": forged})
    source.write_text("".join(json.dumps(r.model_dump()) + "\n" for r in records))
    (tmp_path / "records.meta.jsonl").write_text((pyx_dir / "pyx.meta.jsonl").read_text())
    out = tmp_path / "arms"
    _cli("rationale", str(source), "--programs", str(pyx_dir), "--out", str(out), "--formats", "cwm,none")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"] == {"trace_disagrees_with_answer": 1}
    assert manifest["records_out"] == len(records) - 1
    assert "'forged'" not in (out / "cwm.jsonl").read_text() + (out / "none.jsonl").read_text()
