"""What must not become training data, in every record kind (NL-to-code included), through the real pipeline."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from training.data.executor import ExecOptions
from training.data.pyx_pipeline import PyXConfig, run_pyx
from training.data.teacher import TeacherConfig
from training.data_cli import data_group

CORPUS = '''\
def shout(n):
    """Print a banner of n lines and return n."""
    print("#" * 6_000_000)
    return n


def double(n):
    """Double a number.

    >>> double(3)
    6
    """
    return n * 2
'''


def test_a_flooding_printer_never_reaches_an_nl2code_record_and_no_datasets_is_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "corpus"
    source.mkdir()
    (source / "banners.py").write_text(CORPUS, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as without the `train` extra: `import datasets` fails
    out = tmp_path / "pyx"
    result = CliRunner().invoke(data_group, ["pyx", "--source", str(source), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert re.search(r"execute:output_flood\s+1\b", result.output)
    assert "`datasets` package" in result.output and not (out / "pyx_dataset").exists()
    rows = [json.loads(line) for line in (out / "pyx.jsonl").read_text().splitlines()]
    assert any("Double a number." in r["nl"] for r in rows)
    assert not any("banner" in r["nl"] or "6_000_000" in r["response"] for r in rows)


SOLUTIONS = {
    "clock": "import time\ndef stamp(n):\n    return n + int(time.time() > 0)\n",
    "random": "import random\ndef pick(n):\n    return random.randint(0, n)\n",
    "files": "def slurp(n):\n    return len(open('/etc/hostname').read()) + n\n",
    "flood": "def loud(n):\n    print('!' * 6_000_000)\n    return n\n",
    "clean": "def triple(n):\n    return n * 3\n",
}


def _problem(prompt: str) -> list[str]:
    kind = next(k for k in SOLUTIONS if f"seed_{k}" in prompt)
    code = SOLUTIONS[kind]
    name = re.search(r"def (\w+)", code).group(1)
    return [f"[Problem]\nA {kind} problem.\n[/Problem]\n[Solution]\n```python\n{code}```\n[/Solution]\n"
            f"[Tests]\nassert {name}(2) == 0\nassert {name}(5) == 0\n[/Tests]\n"]


def test_teacher_programs_that_read_clocks_randomness_or_files_or_flood_are_dropped(
        teacher_server, tmp_path: Path) -> None:
    server, teacher = teacher_server
    teacher.script = lambda prompt: _problem(prompt) if "Gain inspiration" in prompt else ["no"]
    source = tmp_path / "seeds"
    source.mkdir()
    (source / "seeds.py").write_text("".join(f"def seed_{k}(x):\n    return x + {i}\n\n\n"
                                             for i, k in enumerate(SOLUTIONS)), encoding="utf-8")
    out = tmp_path / "pyx"
    config = PyXConfig(out=out, source=source, workers=2, execution=ExecOptions(call_timeout_s=0.5, item_timeout_s=3.0),
                       teacher=TeacherConfig(url=server.url, model="teacher", samples=1))
    stats, _ = run_pyx(config)
    assert {k: v for k, v in stats.drops.items() if k.startswith("execute:")} == {
        "execute:clock": 1, "execute:randomness": 1, "execute:side_effect": 1, "execute:output_flood": 1}
    rows = [json.loads(line) for line in (out / "pyx.jsonl").read_text().splitlines()]
    assert {r["nl"] for r in rows if r["nl"]} == {"A clean problem."}
    assert all("triple" in r["response"] or "f(" in r["response"] for r in rows)
