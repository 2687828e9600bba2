"""The real-bug suite's CI cases (benchmarks/realbugs/ci_cases.py), built and repaired end to end.

The session fixture builds every case of ci_cases.json from its pinned PyPI sdist and the vendored
patches (no git mirrors), with its pinned wheels, and checks that it reproduces. Then each case is
repaired with run.py's `repair()`: with the oracle model it must be judged fixed by the upstream fixed
version's tests; without a model the run must finish with a verdict and localize a truly fixed function.

Downloads are cached in ~/.cache/semcoder/realbugs-ci (or $SEMCODER_REALBUGS_CI_CACHE), so a rerun
needs no network. With PyPI unreachable and the cache empty these tests fail, they do not skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.realbugs import ci_cases, oracle  # noqa: E402
from benchmarks.realbugs import run as realbugs_run  # noqa: E402

CASE_IDS = ci_cases.case_ids()

# ast.parse of the projects' old sources (youtube-dl's "\d" in plain strings) warns; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("realbugs-ci")
    cache = ci_cases.default_cache()
    try:
        ci_cases.build(out, cache=cache, log=lambda msg: print(f"[ci_cases] {msg}"))
    except ci_cases.CIBuildError as exc:
        error = str(exc)
    else:
        return out
    pytest.fail(f"cannot build the real-bug CI cases (cache {cache}): {error}", pytrace=False)


@pytest.fixture
def no_mirrors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine has, the oracle must not read a git mirror."""
    monkeypatch.setenv("REALBUGS_MIRROR_DIR", str(tmp_path / "no-mirrors"))
    monkeypatch.delenv("REALBUGS_CI_DIR", raising=False)


def test_ci_cases_are_cases_of_the_suite() -> None:
    assert 2 <= len(CASE_IDS) <= 4
    projects = set()
    for entry in ci_cases.entries():
        rec = ci_cases.case_record(entry)
        projects.add(rec["project"])
        assert rec["reproduces"] and rec["failing_tests"] and rec["fixed_functions"]
        assert len(entry["sdist"]["sha256"]) == 64 and entry["sdist"]["version"] in entry["sdist"]["filename"]
        assert all("==" in pin for pin in entry["pins"])
        for name in (entry["buggy_patch"], entry["fix_patch"]):
            patch = ci_cases.PATCH_DIR / name
            assert patch.stat().st_size < 8192, f"{name} is not a small patch"
        fixed_paths = {fp.new for fp in oracle.parse_patch((ci_cases.PATCH_DIR / entry["fix_patch"]).read_text())}
        assert fixed_paths == set(rec["fix_diff_stats"])
    assert len(projects) == len(CASE_IDS), "one case per project"


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_oracle_reads_the_fix_from_the_built_tree(built: Path, case_id: str, no_mirrors: None) -> None:
    case = ci_cases.load_built(built, case_id)
    for unit in case["fixed_functions"]:
        if unit["kind"] != "function" or unit["fixed_start"] is None:
            continue
        fixed = oracle.fixed_function_source(case, unit["file"], unit["qualname"])
        assert len(fixed.splitlines()) == unit["fixed_end"] - unit["fixed_start"] + 1
        if unit["in_buggy"]:
            buggy = oracle.function_source(oracle.buggy_file(case, unit["file"]), unit["qualname"])
            assert len(buggy.splitlines()) == unit["end"] - unit["start"] + 1
            assert buggy != fixed


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_oracle_repair_is_judged_fixed(built: Path, case_id: str, tmp_path: Path, no_mirrors: None) -> None:
    case = ci_cases.load_built(built, case_id)
    row = realbugs_run.repair(case, built, tmp_path, "oracle", 3)
    assert row.get("judged_fixed") is True, row


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_repair_without_a_model_finishes_and_localizes(built: Path, case_id: str, tmp_path: Path) -> None:
    case = ci_cases.load_built(built, case_id)
    row = realbugs_run.repair(case, built, tmp_path, "none", 2)
    assert row["status"] in ("fixed", "not_fixed"), row
    assert isinstance(row.get("iterations"), int) and row["iterations"] >= 1, row
    assert isinstance(row.get("rank"), int) and row["rank"] >= 1, row


# ------------------------------------------------------------------ the builder's own pieces (fast)


def test_no_index_and_no_cache_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALBUGS_INDEX_URL", "http://127.0.0.1:9/simple/")

    def no_pip(sdist: dict, dest: Path) -> None:
        raise ci_cases.CIBuildError("pip download failed (no network)")

    monkeypatch.setattr(ci_cases, "_with_pip", no_pip)
    entry = ci_cases.entries()[0]
    with pytest.raises(ci_cases.CIBuildError, match=r"cannot get the sdist .* not in the cache"):
        ci_cases.fetch_sdist(entry, tmp_path / "empty-cache", log=lambda msg: None)


def test_a_cached_sdist_with_the_wrong_sha256_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ci_cases.entries()[0]
    (tmp_path / "sdists").mkdir()
    (tmp_path / "sdists" / entry["sdist"]["filename"]).write_bytes(b"not the sdist")
    monkeypatch.setenv("REALBUGS_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.setattr(ci_cases, "_with_pip", lambda sdist, dest: dest.write_bytes(b"still not the sdist"))
    with pytest.raises(ci_cases.CIBuildError, match="sha256"):
        ci_cases.fetch_sdist(entry, tmp_path, log=lambda msg: None)


# (the blank context line has lost its leading space, as editors strip it: still context)
PATCH = """\
diff --git a/pkg/mod.py b/pkg/mod.py
index 1111111..2222222 100644
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -2,3 +2,3 @@ import os

-def f(x):
+def f(x, y=0):
     return x
@@ -9,2 +9,3 @@ def g():
 def h():
-    return 2
\\ No newline at end of file
+    return 2
+# end
diff --git a/pkg/__init__.py b/pkg/__init__.py
new file mode 100644
index 0000000..e69de29
diff --git a/pkg/new.py b/pkg/new.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+A = 1
+B = 2
diff --git a/pkg/old.py b/pkg/old.py
deleted file mode 100644
index 4444444..0000000
--- a/pkg/old.py
+++ /dev/null
@@ -1 +0,0 @@
-gone = True
"""


def test_patches_apply_exactly(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    # two extra lines at the top: the hunks apply at an offset
    (tmp_path / "pkg" / "mod.py").write_text("# a\n# b\nimport os\n\ndef f(x):\n    return x\n\n\ndef g():\n"
                                             "    return 1\ndef h():\n    return 2")
    (tmp_path / "pkg" / "old.py").write_text("gone = True\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.py")}
    patch = tmp_path / "x.patch"
    patch.write_text(PATCH)
    saved = ci_cases.apply_patch(tmp_path, patch)
    assert (tmp_path / "pkg" / "mod.py").read_text() == (
        "# a\n# b\nimport os\n\ndef f(x, y=0):\n    return x\n\n\ndef g():\n    return 1\ndef h():\n"
        "    return 2\n# end\n")
    assert (tmp_path / "pkg" / "__init__.py").read_text() == ""
    assert (tmp_path / "pkg" / "new.py").read_text() == "A = 1\nB = 2\n"
    assert not (tmp_path / "pkg" / "old.py").exists()
    ci_cases.restore(tmp_path, saved)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.py")} == before

    (tmp_path / "pkg" / "mod.py").write_text("import os\n\ndef f(z):\n    return z\n")
    with pytest.raises(ci_cases.CIBuildError, match="does not apply"):
        ci_cases.apply_patch(tmp_path, patch)
