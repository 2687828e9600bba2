"""Loading a benchmark from the Hugging Face Hub through `datasets` (optional dependency)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evals.loaders._files import DatasetError

_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_hub_name(source: str) -> bool:
    """A source that is not an existing path and reads like `owner/name` or `name`."""
    return not Path(source).exists() and bool(_HUB_NAME.match(source))


def load_hub_rows(name: str, *, config: str | None, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError(
            f"{name!r} is not a local file, and loading it from the Hugging Face Hub needs the `datasets` "
            "package (pip install 'semcoder-agent[train]'); or pass --data PATH to a local file"
        ) from exc
    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many unrelated types for one cause: unreachable or unknown
        raise DatasetError(
            f"could not load {name!r} (config {config!r}, split {split!r}) from the Hugging Face Hub: "
            f"{type(exc).__name__}: {exc}. Offline (HF_HUB_OFFLINE=1) or no network? Pass --data PATH "
            "to a local file instead"
        ) from exc
    return [dict(row) for row in dataset]
