"""The monologue ablation: the same PyX records with the reasoning taken out of every monologue response.

A forward/backward response becomes "[/MONOLOGUE]\\n[ANSWER]\\n<its assert line>\\n[/ANSWER]": the prompt
still ends with "[MONOLOGUE]", so the model learns to close an empty monologue at once and answer; prompts,
answers and the eval's answer parsing are the same in both arms, only the reasoning differs.
NL-to-code records are copied unchanged.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from agent.parsing import ParseError, parse_answer
from agent.prompts import PyXRecord
from training.data.loaders import DataError
from training.data.writer import atomic_lines


class StripReport(BaseModel):
    records: Counter[str] = Field(default_factory=Counter, description="Records per task kind.")
    chars_before: Counter[str] = Field(default_factory=Counter, description="Response characters per kind, in.")
    chars_after: Counter[str] = Field(default_factory=Counter, description="Response characters per kind, out.")
    meta_copied: bool = False


def answer_only(record: PyXRecord) -> PyXRecord:
    """The record with an empty monologue before its answer (nl2code records as they are)."""
    if record.kind == "nl2code":
        return record
    answer = parse_answer(record.response, finish_reason="stop")
    if isinstance(answer, ParseError):
        raise ValueError(f"its response has no answer: {answer.detail}")
    return record.model_copy(update={"response": f"[/MONOLOGUE]\n[ANSWER]\n{answer.assertion}\n[/ANSWER]"})


def strip_monologues(source: Path, target: Path) -> StripReport:
    """Writes `target` (and its .meta.jsonl sidecar, copied, when `source` has one)."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    report = StripReport()
    stripped = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = PyXRecord.model_validate(json.loads(line))
                out = answer_only(record)
            except (ValidationError, ValueError) as exc:
                raise DataError(f"{source}:{number}: {exc}") from exc
            report.records[record.kind] += 1
            report.chars_before[record.kind] += len(record.response)
            report.chars_after[record.kind] += len(out.response)
            stripped.append(json.dumps(out.model_dump(), ensure_ascii=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_lines(target, stripped)
    meta = _sidecar(source)
    if meta.is_file():
        shutil.copyfile(meta, _sidecar(target))
        report.meta_copied = True
    return report


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl")


def strip_summary(report: StripReport) -> str:
    lines = [f"{'task':<9} {'records':>8} {'chars before':>13} {'chars after':>12}"]
    for kind in sorted(report.records):
        lines.append(f"{kind:<9} {report.records[kind]:>8} {report.chars_before[kind]:>13} "
                     f"{report.chars_after[kind]:>12}")
    lines.append(f"{'total':<9} {report.records.total():>8} {report.chars_before.total():>13} "
                 f"{report.chars_after.total():>12}")
    lines.append("meta sidecar copied" if report.meta_copied else "no meta sidecar next to the input")
    return "\n".join(lines)
