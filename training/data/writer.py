"""Sharded, resumable output: one shard per chunk of work, written atomically, stats file last.

Layout of an output directory (NAME is `pyx` or `pyx_r`):
    shards/NAME-00003.jsonl        records in SemCoder's exact schema
    shards/NAME-00003.meta.jsonl   one RecordMeta per record, same order (origin, monologue source, bug)
    shards/programs-00003.jsonl    (PyX only) the verified programs, the input of `pyxr`
    shards/NAME-00003.stats.json   the chunk's counts and timings; its presence marks the shard done
`finalize` merges the shards into NAME.jsonl / NAME.meta.jsonl and saves a `datasets` dataset in
NAME_dataset/ (only where `datasets`, the `train` extra, is installed: without it the JSONL files are the
whole output and the summary says so, rather than the run dying after all its work). A crash loses at most the shard in progress: its files are replaced on the rerun.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel

from training.data.models import Program, RecordMeta

_SHARD = re.compile(r"-(\d{5})\.stats\.json$")


def atomic_lines(path: Path, rows: Iterable[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ShardStore:
    def __init__(self, out: Path, name: str) -> None:
        self.out = Path(out)
        self.name = name
        self.shards = self.out / "shards"
        self.shards.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, index: int, suffix: str = "jsonl") -> Path:
        return self.shards / f"{kind}-{index:05d}.{suffix}"

    def done(self) -> set[int]:
        return {int(m.group(1)) for p in self.shards.glob(f"{self.name}-*.stats.json") if (m := _SHARD.search(p.name))}

    def write(self, index: int, records: Sequence[BaseModel], metas: Sequence[RecordMeta], stats: dict,
              programs: Sequence[Program] | None = None) -> None:
        if len(records) != len(metas):
            raise ValueError("every record needs its meta line")
        atomic_lines(self.path(self.name, index), (json.dumps(r.model_dump(), ensure_ascii=False) for r in records))
        atomic_lines(self.path(self.name, index, "meta.jsonl"), (m.model_dump_json() for m in metas))
        if programs is not None:
            atomic_lines(self.path("programs", index), (p.model_dump_json() for p in programs))
        atomic_lines(self.path(self.name, index, "stats.json"), [json.dumps(stats)])

    def all_stats(self) -> list[dict]:
        return [json.loads(self.path(self.name, i, "stats.json").read_text()) for i in sorted(self.done())]

    def record_files(self) -> list[Path]:
        return [self.path(self.name, i) for i in sorted(self.done())]

    def finalize(self) -> tuple[Path, Path | None]:
        """Merged JSONL and a `datasets` dataset on disk (the exact schema's columns only; None without `datasets`)."""
        merged = self.out / f"{self.name}.jsonl"
        meta = self.out / f"{self.name}.meta.jsonl"
        atomic_lines(merged, (line for p in self.record_files() for line in _lines(p)))
        atomic_lines(meta, (line for i in sorted(self.done())
                             for line in _lines(self.path(self.name, i, "meta.jsonl"))))
        dataset_dir = self.out / f"{self.name}_dataset"
        return merged, dataset_dir if save_dataset(merged, dataset_dir) else None


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


DATASETS_MISSING_NOTE = ("note: the `datasets` package (the `train` extra: pip install 'semcoder-agent[train]') "
                         "is not installed, so no {name}_dataset/ copy was saved; {name}.jsonl is the complete output")


def save_dataset(jsonl: Path, directory: Path) -> bool:
    """Saves the dataset copy; False (nothing written) when `datasets` is not installed."""
    try:
        from datasets import Dataset, disable_progress_bars  # a heavy import, needed only here
    except ImportError:
        return False

    disable_progress_bars()

    rows = [json.loads(line) for line in _lines(jsonl)]
    columns = list(rows[0]) if rows else ["response"]
    Dataset.from_dict({c: [row[c] for row in rows] for c in columns}).save_to_disk(str(directory))
    return True
