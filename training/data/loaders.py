"""Readers for PyX / PyX-R: this pipeline's output directories and the released `pyx.jsonl`/`pyx_r.jsonl`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from agent.prompts import PyXRecord, PyXRRecord
from training.data.models import Program

Record = TypeVar("Record", bound=BaseModel)


class DataError(ValueError):
    """A data file is missing or holds a row that does not fit the schema."""


def _files(path: Path, name: str) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist")
    merged = path / f"{name}.jsonl"
    if merged.is_file():
        return [merged]
    shards = sorted((path / "shards").glob(f"{name}-[0-9][0-9][0-9][0-9][0-9].jsonl"))
    if not shards:
        raise DataError(f"{path} holds neither {name}.jsonl nor shards/{name}-*.jsonl")
    return shards


def _read(files: list[Path], model: type[Record]) -> Iterator[Record]:
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield model.model_validate(json.loads(line))
                except (ValidationError, json.JSONDecodeError) as exc:
                    raise DataError(f"{file}:{number}: not a {model.__name__}: {exc}") from exc


def read_pyx(path: str | Path) -> list[PyXRecord]:
    """PyX records from a .jsonl file (ours or the released pyx.jsonl) or an output directory."""
    return list(_read(_files(Path(path), "pyx"), PyXRecord))


def read_pyxr(path: str | Path) -> list[PyXRRecord]:
    """PyX-R records from a .jsonl file (ours or the released pyx_r.jsonl) or an output directory."""
    return list(_read(_files(Path(path), "pyx_r"), PyXRRecord))


def read_programs(directory: str | Path) -> Iterator[tuple[int, list[Program]]]:
    """The verified programs of a PyX output directory, shard by shard (the input of `pyxr`)."""
    shards = sorted((Path(directory) / "shards").glob("programs-[0-9][0-9][0-9][0-9][0-9].jsonl"))
    if not shards:
        raise DataError(f"{directory} has no shards/programs-*.jsonl: run `semcoder data pyx` into it first")
    for shard in shards:
        index = int(shard.stem.split("-")[1])
        yield index, list(_read([shard], Program))


def to_dataset(records: list[Record]):
    """A `datasets.Dataset` with the records' fields as columns."""
    from datasets import Dataset

    rows = [r.model_dump() for r in records]
    columns = list(rows[0]) if rows else []
    return Dataset.from_dict({c: [row[c] for row in rows] for c in columns})
