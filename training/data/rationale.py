"""The rationale-format ablation: one SFT file per trace rendering, same programs, prompts and answers.

    semcoder data rationale PYX_DIR --out DIR --formats monologue,next,cwm,none

For every forward/backward record of a PyX output directory, its call is traced again in the sandbox (the
records keep no trace; the program shards keep the code, the meta sidecar says which program a record asks
about, and the record's own [ANSWER] says which call). Each format's record keeps the prompt field and the
answer block byte for byte and replaces only what comes before `[/MONOLOGUE]`:

    monologue  the record's own response (SemCoder's natural-language monologue, as `data pyx` wrote it)
    next       the NExT-style concise trace: the source with `# [STATE-k]` annotations (sandbox's `semcoder`
               renderer, the paper's "concise trace")
    cwm        Code World Model raw frames (sandbox's `cwm` renderer, frames only: the prompt shows the code)
    none       nothing: the answer alone (what `strip-monologue` writes)

NL-to-code records are the same in every file. A record is dropped from every file, so that the arms train
on the same programs, when its trace cannot be taken again as it was (the call now disagrees with the
record's answer, or the trace hit its cap) or when one format's rationale is longer than
`max_rationale_chars`; the manifest counts each reason. Files are `DIR/<format>.jsonl` (+ `.meta.jsonl`, the
sidecar lines of the records kept) and `DIR/manifest.json`.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.parsing import ParseError, parse_answer
from agent.prompts import PyXRecord
from sandbox import Pool
from sandbox.trace_render import CwmCaps, render_cwm, render_semcoder
from sandbox.tracer import Trace
from training.data.loaders import DataError, read_programs
from training.data.models import Program, RecordMeta
from training.data.monologue import rename_entry
from training.data.tracing import trace_rows
from training.data.verify import same_value
from training.data.writer import atomic_lines

RationaleFormat = Literal["monologue", "next", "cwm", "none"]
RATIONALE_FORMATS: tuple[RationaleFormat, ...] = ("monologue", "next", "cwm", "none")
MONOLOGUE_END = "[/MONOLOGUE]"


class RationaleConfig(BaseModel):
    """One run of `semcoder data rationale`. Every field has a CLI flag."""

    model_config = ConfigDict(extra="forbid")

    pyx: Path = Field(description="A `semcoder data pyx` output directory, or one of its record files (.jsonl "
                                  "with its .meta.jsonl sidecar, e.g. a split's train/pyx.jsonl).")
    programs: Path | None = Field(None, description="Directory with shards/programs-*.jsonl (default: `pyx`).")
    out: Path
    formats: list[RationaleFormat] = Field(default_factory=lambda: list(RATIONALE_FORMATS), min_length=1)
    max_rationale_chars: int = Field(4_000, gt=0, description="A record whose rationale is longer in any format "
                                                              "is dropped from all of them.")
    cwm: CwmCaps = CwmCaps()
    workers: int = Field(2, ge=1, description="Sandbox workers that take the traces.")
    backend: str = "local"


class Spread(BaseModel):
    mean: float = 0.0
    median: float = 0.0


class FormatReport(BaseModel):
    """One format's file. Tokens are whitespace-separated pieces (str.split), not a model tokenizer's."""

    file: str
    records: int = 0
    records_by_task: Counter[str] = Field(default_factory=Counter)
    response_chars: int = Field(0, description="All responses together, in characters.")
    response_whitespace_tokens: int = Field(0, description="All responses together, in str.split() pieces.")
    rationale_chars: Spread = Field(default_factory=Spread, description="Per forward/backward record.")
    rationale_whitespace_tokens: Spread = Field(default_factory=Spread, description="Per forward/backward record.")


class RationaleManifest(BaseModel):
    source: str
    formats: list[RationaleFormat]
    records_in: int
    records_out: int = Field(description="Records in each file (the same in all).")
    dropped: Counter[str] = Field(default_factory=Counter, description="Records left out of every file, by reason.")
    token_unit: str = "whitespace-separated pieces (str.split); characters are Python str lengths"
    cwm_caps: CwmCaps
    max_rationale_chars: int
    per_format: dict[str, FormatReport] = Field(default_factory=dict)


class _Item(BaseModel):
    """A record on its way through: its sidecar line, and for a monologue record the call to trace."""

    record: PyXRecord
    meta: RecordMeta
    answer_block: str = ""
    code: str = ""
    call: str = ""
    expected: str = ""


def answer_block_of(response: str) -> str:
    """`[/MONOLOGUE]\\n[ANSWER]\\n<assertion>\\n[/ANSWER]`, exactly as the record ends (ValueError if it has none)."""
    answer = parse_answer(response, finish_reason="stop")
    if isinstance(answer, ParseError):
        raise ValueError(f"its response has no answer: {answer.detail}")
    return f"{MONOLOGUE_END}\n[ANSWER]\n{answer.assertion}\n[/ANSWER]"


def rationale_of(fmt: RationaleFormat, record: PyXRecord, trace: Trace | None, caps: CwmCaps) -> str:
    """What comes before the answer block in format `fmt` ('' for none)."""
    if fmt == "none":
        return ""
    if fmt == "monologue":
        return record.response[: record.response.rfind(MONOLOGUE_END)].rstrip("\n")
    if trace is None:
        raise ValueError("a trace is needed")
    if fmt == "next":
        return render_semcoder(trace)
    return render_cwm(trace, caps, context=False)


def response_for(fmt: RationaleFormat, record: PyXRecord, trace: Trace | None, caps: CwmCaps) -> str:
    """The record's response in format `fmt` (NL-to-code and monologue records: their own response)."""
    if fmt == "monologue" or record.kind == "nl2code":
        return record.response
    block = answer_block_of(record.response)
    rationale = rationale_of(fmt, record, trace, caps).rstrip("\n")  # the source's last newline: one is enough
    return f"{rationale}\n{block}" if rationale else block


def read_records(path: Path) -> tuple[list[PyXRecord], list[RecordMeta]]:
    """Records and their sidecar lines from an output directory (merged files or shards) or a .jsonl file."""
    path = Path(path)
    if path.is_file():
        pairs = [(path, path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl"))]
    elif (path / "pyx.jsonl").is_file():
        pairs = [(path / "pyx.jsonl", path / "pyx.meta.jsonl")]
    elif path.is_dir():
        shards = sorted((path / "shards").glob("pyx-[0-9][0-9][0-9][0-9][0-9].jsonl"))
        pairs = [(s, s.with_name(s.name.removesuffix(".jsonl") + ".meta.jsonl")) for s in shards]
        if not pairs:
            raise DataError(f"{path} holds neither pyx.jsonl nor shards/pyx-*.jsonl")
    else:
        raise DataError(f"{path} does not exist")
    records: list[PyXRecord] = []
    metas: list[RecordMeta] = []
    for file, sidecar in pairs:
        if not sidecar.is_file():
            raise DataError(f"{file} has no {sidecar.name} next to it: its records cannot be matched to programs")
        records.extend(_lines(file, PyXRecord))
        metas.extend(_lines(sidecar, RecordMeta))
        if len(records) != len(metas):
            raise DataError(f"{file} and {sidecar.name} have different numbers of lines")
    return records, metas


def _lines(file: Path, model: type[BaseModel]) -> list:
    out = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(model.model_validate_json(line))
            except ValidationError as exc:
                raise DataError(f"{file}:{number}: not a {model.__name__}: {exc}") from exc
    return out


def _programs(directory: Path) -> dict[str, Program]:
    return {p.key: p for _, shard in read_programs(directory) for p in shard}


def build_rationales(config: RationaleConfig, pool: Pool | None = None) -> RationaleManifest:
    """Writes one file per format and the manifest; returns the manifest."""
    records, metas = read_records(config.pyx)
    programs = _programs(config.programs or (config.pyx if Path(config.pyx).is_dir() else Path(config.pyx).parent))
    dropped: Counter[str] = Counter()
    items: list[_Item] = []
    for record, meta in zip(records, metas, strict=True):
        item = _Item(record=record, meta=meta)
        if record.kind != "nl2code":
            program = programs.get(meta.program)
            try:
                item.answer_block = answer_block_of(record.response)
            except ValueError:
                dropped["no_answer"] += 1
                continue
            if program is None:
                dropped["no_program"] += 1
                continue
            answer = parse_answer(record.response, finish_reason="stop")
            assert not isinstance(answer, ParseError)  # answer_block_of read it above
            item.code, item.call, item.expected = rename_entry(program.code, program.entry), answer.call, answer.value
        items.append(item)
    traces = _traces(items, config, pool)
    kept: list[tuple[_Item, dict[str, str]]] = []
    for item, trace in zip(items, traces, strict=True):
        if item.record.kind != "nl2code":
            if trace is None or trace.truncated:
                dropped["trace_too_long"] += 1
                continue
            if trace.return_repr is None or not same_value(trace.return_repr, item.expected):
                dropped["trace_disagrees_with_answer"] += 1
                continue
        responses = {fmt: response_for(fmt, item.record, trace, config.cwm) for fmt in config.formats}
        too_long = [fmt for fmt in config.formats
                    if len(responses[fmt]) - len(item.answer_block) > config.max_rationale_chars]
        if too_long:
            dropped["too_long_" + too_long[0]] += 1  # counted once, under the first format it does not fit
            continue
        kept.append((item, responses))
    return _write(config, kept, len(records), dropped)


def _traces(items: list[_Item], config: RationaleConfig, pool: Pool | None) -> list[Trace | None]:
    rows = [(item.code, item.call) for item in items if item.record.kind != "nl2code"]
    if pool is None:
        with Pool(config.workers, backend=config.backend) as own:
            taken = iter(trace_rows(rows, config.workers, config.backend, runner=own))
    else:
        taken = iter(trace_rows(rows, config.workers, config.backend, runner=pool))
    return [next(taken) if item.record.kind != "nl2code" else None for item in items]


def _write(config: RationaleConfig, kept: list[tuple[_Item, dict[str, str]]], records_in: int,
           dropped: Counter[str]) -> RationaleManifest:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = RationaleManifest(source=str(config.pyx), formats=config.formats, records_in=records_in,
                                 records_out=len(kept), dropped=dropped, cwm_caps=config.cwm,
                                 max_rationale_chars=config.max_rationale_chars)
    for fmt in config.formats:
        rows, sizes, words = [], [], []
        report = FormatReport(file=f"{fmt}.jsonl")
        for item, responses in kept:
            response = responses[fmt]
            record = item.record.model_copy(update={"response": response})
            rows.append(json.dumps(record.model_dump(), ensure_ascii=False))
            report.records += 1
            report.records_by_task[item.meta.task] += 1
            report.response_chars += len(response)
            report.response_whitespace_tokens += len(response.split())
            if item.record.kind != "nl2code":
                rationale = response[: len(response) - len(item.answer_block)]
                sizes.append(len(rationale))
                words.append(len(rationale.split()))
        report.rationale_chars = _spread(sizes)
        report.rationale_whitespace_tokens = _spread(words)
        atomic_lines(out / f"{fmt}.jsonl", rows)
        atomic_lines(out / f"{fmt}.meta.jsonl", (item.meta.model_dump_json() for item, _ in kept))
        manifest.per_format[fmt] = report
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest


def _spread(values: list[int]) -> Spread:
    return Spread(mean=statistics.fmean(values), median=float(statistics.median(values))) if values else Spread()


def rationale_summary(manifest: RationaleManifest, out: Path) -> str:
    lines = [f"rationale formats in {out}: {manifest.records_out} of {manifest.records_in} records in every file",
             f"{'format':<10}{'records':>8}{'resp chars':>12}{'resp tokens':>13}{'rat chars mean/median':>24}"]
    for fmt, report in manifest.per_format.items():
        spread = f"{report.rationale_chars.mean:.0f}/{report.rationale_chars.median:.0f}"
        lines.append(f"{fmt:<10}{report.records:>8}{report.response_chars:>12}{report.response_whitespace_tokens:>13}"
                     f"{spread:>24}")
    lines.append("tokens: " + manifest.token_unit)
    lines.append("dropped from every file: " + (", ".join(f"{k} {v}" for k, v in sorted(manifest.dropped.items()))
                                                 or "none"))
    return "\n".join(lines)
