"""A held-out CRUXEval-O-style set of PyX programs and training files that never saw them.

    OUT/heldout/exec_o.jsonl            {id: "pyx/<key>", code, input, output} (loads with load_cruxeval)
    OUT/train/pyx.jsonl (+ .meta.jsonl)  every PyX record whose program is not held out
    OUT/train/pyx_r.jsonl (+ .meta.jsonl) the same for PyX-R (a bug injected into a held-out program leaks it too;
                                         only when a PyX-R folder is given)
    OUT/split.json                      the held-out keys and the counts printed in the summary

The held-out programs are those with a forward record (generator programs first, as they are CRUXEval's
kind of function), drawn with `seed`; each row is the program renamed to `f` and its first example, the one
its forward record asks about. A training record goes when its program key is held out or when its program's
code (renamed to `f`) equals a held-out program's code under another key.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from training.data.loaders import DataError, read_programs
from training.data.models import Program, RecordMeta
from training.data.monologue import rename_entry
from training.data.writer import atomic_lines

DropReason = str  # "held_out" (same key) or "same_code" (same code under another key)


class SplitConfig(BaseModel):
    """One split. Every field has a CLI flag of the same name."""

    pyx: Path = Field(description="Output directory of `semcoder data pyx` (records, meta, program shards).")
    pyxr: Path | None = Field(None, description="Output directory of `semcoder data pyxr` (none: no PyX-R files).")
    out: Path = Field(description="Where train/, heldout/ and split.json go.")
    holdout: int = Field(ge=1, description="Programs to hold out.")
    seed: int = Field(0, description="Seed of the draw (same seed and inputs, same held-out set).")


class HeldOutRow(BaseModel):
    """A row of a CRUXEval-format file."""

    id: str
    code: str
    input: str
    output: str


class FileCounts(BaseModel):
    """Per task kind: records kept and dropped (by reason) from one record file."""

    kept: Counter[str] = Field(default_factory=Counter)
    dropped: Counter[str] = Field(default_factory=Counter)


class SplitReport(BaseModel):
    seed: int
    held_out: list[str] = Field(description="Keys of the held-out programs, in file order.")
    held_out_origins: Counter[str] = Field(default_factory=Counter)
    files: dict[str, FileCounts] = Field(default_factory=dict)


def split_pyx(config: SplitConfig) -> SplitReport:
    """Writes the held-out file and the leak-free training files; returns what it kept and dropped."""
    programs = load_programs(config.pyx)
    pyx = aligned_lines(config.pyx, "pyx")
    pyxr = aligned_lines(config.pyxr, "pyx_r") if config.pyxr is not None else None
    chosen = pick_holdout(programs, [meta for _, meta in pyx], config.holdout, config.seed)
    held_codes = {entry_code(programs[key]) for key in chosen}
    report = SplitReport(seed=config.seed, held_out=chosen,
                         held_out_origins=Counter(programs[key].origin.kind for key in chosen))
    train = Path(config.out) / "train"
    train.mkdir(parents=True, exist_ok=True)
    for name, rows in (("pyx", pyx), ("pyx_r", pyxr)):
        if rows is None:
            continue
        kept, report.files[name] = _filter(rows, set(chosen), held_codes, programs)
        atomic_lines(train / f"{name}.jsonl", (line for line, _ in kept))
        atomic_lines(train / f"{name}.meta.jsonl", (meta.model_dump_json() for _, meta in kept))
    heldout = Path(config.out) / "heldout"
    heldout.mkdir(parents=True, exist_ok=True)
    atomic_lines(heldout / "exec_o.jsonl", (heldout_row(programs[key]).model_dump_json() for key in chosen))
    atomic_lines(Path(config.out) / "split.json", [report.model_dump_json(indent=1)])
    return report


def entry_code(program: Program) -> str:
    """The program as its forward record shows it (before line labels and quote style): entry renamed to f."""
    return rename_entry(program.code, program.entry).rstrip("\n")


def heldout_row(program: Program) -> HeldOutRow:
    example = program.examples[0]
    return HeldOutRow(id=f"pyx/{program.key}", code=entry_code(program), input=example.input, output=example.output)


def pick_holdout(programs: dict[str, Program], metas: list[RecordMeta], count: int, seed: int) -> list[str]:
    """`count` keys of programs with a forward record: generator programs first, each group shuffled by seed."""
    forward = sorted({m.program for m in metas if m.task == "forward" and m.program in programs})
    if count > len(forward):
        raise DataError(f"--holdout {count} is more than the {len(forward)} programs with a forward record")
    rng = random.Random(seed)
    generated = [key for key in forward if programs[key].origin.kind == "generator"]
    others = [key for key in forward if programs[key].origin.kind != "generator"]
    rng.shuffle(generated)
    rng.shuffle(others)
    return (generated + others)[:count]


def _filter(rows: list[tuple[str, RecordMeta]], held_keys: set[str], held_codes: set[str],
            programs: dict[str, Program]) -> tuple[list[tuple[str, RecordMeta]], FileCounts]:
    counts = FileCounts()
    kept = []
    for line, meta in rows:
        reason = _leak(meta.program, held_keys, held_codes, programs)
        if reason:
            counts.dropped[f"{meta.task}:{reason}"] += 1
        else:
            counts.kept[meta.task] += 1
            kept.append((line, meta))
    return kept, counts


def _leak(key: str, held_keys: set[str], held_codes: set[str], programs: dict[str, Program]) -> DropReason | None:
    if key in held_keys:
        return "held_out"
    if key not in programs:
        # Every record of a pyx/pyxr run belongs to a program of its shards; anything else is a broken input.
        raise DataError(f"a record's program {key} is not in the programs shards: are --pyx and --pyxr one run?")
    return "same_code" if entry_code(programs[key]) in held_codes else None


def load_programs(pyx_dir: Path) -> dict[str, Program]:
    return {program.key: program for _, shard in read_programs(pyx_dir) for program in shard}


def aligned_lines(directory: Path, name: str) -> list[tuple[str, RecordMeta]]:
    """The raw record lines of DIR/NAME.jsonl, each with its meta line (the sidecar must align)."""
    records_path, metas_path = Path(directory) / f"{name}.jsonl", Path(directory) / f"{name}.meta.jsonl"
    for path in (records_path, metas_path):
        if not path.is_file():
            raise DataError(f"{path} does not exist: is {directory} a finished `semcoder data` output directory?")
    records = _nonblank(records_path)
    metas = _nonblank(metas_path)
    if len(records) != len(metas):
        raise DataError(f"{records_path} has {len(records)} records but {metas_path} has {len(metas)} meta lines")
    try:
        return [(line, RecordMeta.model_validate_json(meta)) for line, meta in zip(records, metas, strict=True)]
    except ValueError as exc:
        raise DataError(f"{metas_path}: not a RecordMeta line: {exc}") from exc


def _nonblank(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_summary(report: SplitReport, out: Path) -> str:
    origins = ", ".join(f"{kind} {n}" for kind, n in sorted(report.held_out_origins.items()))
    lines = [f"held out: {len(report.held_out)} programs ({origins}) -> {Path(out) / 'heldout' / 'exec_o.jsonl'}",
             f"{'file':<7} {'task':<9} {'kept':>7} {'held_out':>9} {'same_code':>10}"]
    for name, counts in report.files.items():
        tasks = sorted(set(counts.kept) | {key.split(":")[0] for key in counts.dropped})
        for task in tasks:
            lines.append(f"{name:<7} {task:<9} {counts.kept[task]:>7} {counts.dropped[f'{task}:held_out']:>9} "
                         f"{counts.dropped[f'{task}:same_code']:>10}")
    return "\n".join(lines)

