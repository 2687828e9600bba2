#!/usr/bin/env python3
"""Smoke check of oracle.py against the git mirrors (needs them, so it is not a pytest test).

    python benchmarks/realbugs/oracle_smoke.py [CASE_ID]

Prints the buggy->fixed diff of the first fixed function of CASE_ID (default youtube-dl-26), then checks
that every recorded function of every case resolves in its fixed commit with the recorded length.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.realbugs import oracle


def main() -> int:
    case = oracle.load_case(sys.argv[1] if len(sys.argv) > 1 else "youtube-dl-26")
    fn = next(f for f in case["fixed_functions"] if f["kind"] == "function")
    fixed = oracle.fixed_function_source(case, fn["file"], fn["qualname"])
    assert fixed in oracle.fixed_file(case, fn["file"])
    print(f"{case['id']}: {fn['file']}::{fn['qualname']} ({len(fixed.splitlines())} lines in the fix)")
    if fn["in_buggy"]:
        buggy = oracle.function_source(oracle.buggy_file(case, fn["file"]), fn["qualname"])
        sys.stdout.writelines(difflib.unified_diff(buggy.splitlines(True), fixed.splitlines(True),
                                                   "buggy", "fixed", n=1))
    checked = 0
    for c in oracle.load_cases():
        for f in c.get("fixed_functions", []):
            if f["kind"] != "function" or f["fixed_start"] is None:
                continue
            src = oracle.fixed_function_source(c, f["file"], f["qualname"])
            assert len(src.splitlines()) == f["fixed_end"] - f["fixed_start"] + 1, (c["id"], f["qualname"])
            checked += 1
    print(f"ok: {checked} fixed functions resolve in their fixed commits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
