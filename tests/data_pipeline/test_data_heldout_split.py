"""`semcoder data split` and `strip-monologue` on a real (tiny) PyX + PyX-R run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import sandbox
from agent.parsing import parse_answer
from agent.prompts import PyXRecord
from evals.loaders import load_cruxeval
from training.data.models import Example, Origin, Program, RecordMeta
from training.data.pyx_pipeline import prompt_piece
from training.data.split import aligned_lines, entry_code, load_programs, pick_holdout
from training.data_cli import data_group

pytestmark = pytest.mark.slow  # a real pipeline run (~10 s) feeds every test here

HOLDOUT = 4


def _cli(*args: str) -> str:
    result = CliRunner().invoke(data_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher-free run of 12 generated programs: pyx/ and pyx_r/."""
    root = tmp_path_factory.mktemp("run")
    _cli("pyx", "--generated", "12", "--shard-size", "6", "--workers", "2", "--out", str(root / "pyx"))
    _cli("pyxr", "--pyx", str(root / "pyx"), "--workers", "2", "--out", str(root / "pyx_r"))
    return root


@pytest.fixture(scope="module")
def split(run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("split")
    summary = _cli("split", "--pyx", str(run / "pyx"), "--pyxr", str(run / "pyx_r"), "--out", str(out),
                   "--holdout", str(HOLDOUT), "--seed", "0")
    return out, summary


def _keys(path: Path) -> list[str]:
    return [json.loads(line)["program"] for line in path.read_text().splitlines()]


def _shown_code(instruction: str) -> str:
    return re.sub(r" # \[L\d+\]$", "", instruction.split("[PYTHON]\n")[1].split("\nassert f(")[0], flags=re.M)


def test_train_keeps_every_record_but_those_of_held_out_programs(run: Path, split: tuple[Path, str]) -> None:
    out, summary = split
    held = {row.task_id.removeprefix("pyx/") for row in load_cruxeval(out / "heldout" / "exec_o.jsonl")}
    assert len(held) == HOLDOUT
    for name, folder in (("pyx", "pyx"), ("pyx_r", "pyx_r")):
        before = _keys(run / folder / f"{name}.meta.jsonl")
        train = _keys(out / "train" / f"{name}.meta.jsonl")
        assert not held & set(train)
        assert train == [key for key in before if key not in held]
        assert len((out / "train" / f"{name}.jsonl").read_text().splitlines()) == len(train)
        assert held & set(before), f"the held-out programs had {name} records to drop"
    assert f"held out: {HOLDOUT} programs (generator {HOLDOUT})" in summary
    assert re.search(r"^pyx_r\s+refine\s+\d+\s+[1-9]\d*\s+0$", summary, re.M), summary


def test_no_train_record_shows_a_held_out_program(split: tuple[Path, str]) -> None:
    out, _ = split
    held = {row.code for row in load_cruxeval(out / "heldout" / "exec_o.jsonl")}
    shown = set()
    for line in (out / "train" / "pyx.jsonl").read_text().splitlines():
        record = PyXRecord.model_validate_json(line)
        if record.kind == "forward":
            shown.add(_shown_code(record.fwd_mnl))
        elif record.kind == "nl2code":
            shown.add(record.response.removeprefix("```python\n").removesuffix("\n```"))
    assert shown and not shown & (held | {prompt_piece(code) for code in held})


def test_held_out_rows_are_the_forward_records_and_their_asserts_hold(run: Path, split: tuple[Path, str]) -> None:
    out, _ = split
    rows = load_cruxeval(out / "heldout" / "exec_o.jsonl")
    forward = {meta.program: PyXRecord.model_validate_json(line)
               for line, meta in aligned_lines(run / "pyx", "pyx") if meta.task == "forward"}
    for row in rows:
        assert row.task_id.startswith("pyx/") and row.code.startswith("def f(")
        record = forward[row.task_id.removeprefix("pyx/")]
        assert _shown_code(record.fwd_mnl) == prompt_piece(row.code)
        assert f"assert f({prompt_piece(row.input)}) == ??" in record.fwd_mnl
        result = sandbox.run(f"{row.code}\nassert f({row.input}) == {row.output}\n")
        assert result.ok, (row, result.stderr)


def test_the_draw_depends_only_on_the_seed(run: Path, split: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = split
    args = ["split", "--pyx", str(run / "pyx"), "--pyxr", str(run / "pyx_r"), "--holdout", str(HOLDOUT)]
    _cli(*args, "--out", str(tmp_path / "again"), "--seed", "0")
    _cli(*args, "--out", str(tmp_path / "other"), "--seed", "1")
    first = (out / "heldout" / "exec_o.jsonl").read_text()
    assert (tmp_path / "again" / "heldout" / "exec_o.jsonl").read_text() == first
    assert (tmp_path / "other" / "heldout" / "exec_o.jsonl").read_text() != first


def test_without_pyxr_the_split_writes_the_pyx_files_alone(run: Path, split: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    out, _ = split
    summary = _cli("split", "--pyx", str(run / "pyx"), "--out", str(tmp_path / "alone"), "--holdout", str(HOLDOUT),
                   "--seed", "0")
    for name in ("heldout/exec_o.jsonl", "train/pyx.jsonl", "train/pyx.meta.jsonl"):
        assert (tmp_path / "alone" / name).read_text() == (out / name).read_text()
    assert not (tmp_path / "alone" / "train" / "pyx_r.jsonl").exists()
    assert "pyx_r" not in summary


def test_the_same_code_under_another_key_is_dropped_too(run: Path, tmp_path: Path) -> None:
    pyx = tmp_path / "pyx"
    shutil.copytree(run / "pyx", pyx)
    programs = load_programs(pyx)
    chosen = pick_holdout(programs, [meta for _, meta in aligned_lines(pyx, "pyx")], HOLDOUT, 0)
    original = programs[chosen[0]]
    twin = original.model_copy(update={"code": original.code.replace("def f(", "def twin(", 1).replace(
        "f(", "twin("), "entry": "twin"})
    assert twin.key != original.key and entry_code(twin) == entry_code(original)
    with (pyx / "shards" / "programs-00000.jsonl").open("a") as handle:
        handle.write(twin.model_dump_json() + "\n")
    with (pyx / "pyx.jsonl").open("a") as handle:
        handle.write(json.dumps({"nl": "twin", "fwd_mnl": "", "bwd_mnl": "", "response": twin.code}) + "\n")
    with (pyx / "pyx.meta.jsonl").open("a") as handle:
        handle.write(RecordMeta(program=twin.key, origin=twin.origin, task="nl2code").model_dump_json() + "\n")
    summary = _cli("split", "--pyx", str(pyx), "--pyxr", str(run / "pyx_r"), "--out", str(tmp_path / "out"),
                   "--holdout", str(HOLDOUT), "--seed", "0")
    assert re.search(r"^pyx\s+nl2code\s+\d+\s+\d+\s+1$", summary, re.M), summary
    assert twin.key not in _keys(tmp_path / "out" / "train" / "pyx.meta.jsonl")


def _program(name: str, kind: str) -> Program:
    return Program(code=f"def {name}(x):\n    return x\n", entry=name, origin=Origin(kind=kind, ref=name),
                   examples=[Example(input="1", output="1")])


def test_generator_programs_are_held_out_first_and_only_those_with_a_forward_record() -> None:
    programs = [_program(f"g{i}", "generator") for i in range(3)] + [_program(f"c{i}", "corpus") for i in range(3)]
    by_key = {p.key: p for p in programs}
    metas = [RecordMeta(program=p.key, origin=p.origin, task="forward") for p in programs[:5]]
    metas.append(RecordMeta(program=programs[5].key, origin=programs[5].origin, task="backward"))
    assert set(pick_holdout(by_key, metas, 3, 7)) == {p.key for p in programs[:3]}
    assert set(pick_holdout(by_key, metas, 5, 7)) == {p.key for p in programs[:5]}


def test_clear_errors_for_missing_files_and_too_many(run: Path, tmp_path: Path) -> None:
    def fails(*args: str) -> str:
        result = CliRunner().invoke(data_group, ["split", "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 1
        return result.output

    base = ["--pyx", str(run / "pyx"), "--pyxr", str(run / "pyx_r")]
    assert "more than the" in fails(*base, "--holdout", "1000")
    assert "pyx_r.jsonl does not exist" in fails("--pyx", str(run / "pyx"), "--pyxr", str(tmp_path), "--holdout", "1")
    assert "no shards/programs-" in fails("--pyx", str(tmp_path), "--pyxr", str(run / "pyx_r"), "--holdout", "1")


def test_strip_monologue_keeps_prompts_and_answers(split: tuple[Path, str], tmp_path: Path) -> None:
    from training.sft import render_record

    out, _ = split
    source = out / "train" / "pyx.jsonl"
    summary = _cli("strip-monologue", str(source), str(tmp_path / "nomono" / "pyx.jsonl"))
    before = [json.loads(line) for line in source.read_text().splitlines()]
    after = [json.loads(line) for line in (tmp_path / "nomono" / "pyx.jsonl").read_text().splitlines()]
    assert len(before) == len(after) and {row["fwd_mnl"] != "" for row in after} == {True, False}
    for number, (old, new) in enumerate(zip(before, after, strict=True)):
        old_example, new_example = render_record(old, "pyx", f"old:{number}"), render_record(new, "pyx", f"new:{number}")
        assert new_example.prompt == old_example.prompt
        if old["nl"]:
            assert new == old
            continue
        assertion = parse_answer(old["response"], finish_reason="stop").assertion
        assert new_example.completion == f"[/MONOLOGUE]\n[ANSWER]\n{assertion}\n[/ANSWER]"
        assert parse_answer(new_example.completion, finish_reason="stop").assertion == assertion
        assert old_example.prompt.endswith("[MONOLOGUE]\n")
    assert (tmp_path / "nomono" / "pyx.meta.jsonl").read_text() == (out / "train" / "pyx.meta.jsonl").read_text()
    total = sum(len(row["response"]) for row in before)
    assert re.search(rf"^total\s+{len(before)}\s+{total}\s+\d+$", summary, re.M), summary


def test_strip_monologue_names_the_line_without_an_answer(tmp_path: Path) -> None:
    bad = tmp_path / "pyx.jsonl"
    bad.write_text(json.dumps({"nl": "", "fwd_mnl": "[PYTHON]", "bwd_mnl": "", "response": "no answer"}) + "\n")
    result = CliRunner().invoke(data_group, ["strip-monologue", str(bad), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1 and "pyx.jsonl:1" in result.output
