#!/usr/bin/env python3
"""Build the CI cases of the real-bug suite without git: a pinned PyPI sdist plus small vendored patches.

For every case of ``ci_cases.json`` this script

* gets the project's release sdist (from the cache folder, else from the package index's simple page,
  else with ``pip download``) and checks its sha256;
* extracts it into ``<out>/<id>/buggy`` (without ``PKG-INFO``/``*.egg-info``) and applies
  ``ci_patches/<id>.buggy.patch``, which makes the files the case needs the buggy commit's (and the
  bug's test files the fixed commit's, as BugsInPy's checkout does);
* makes ``<out>/<id>/venv`` with the case's Python and exactly its pinned wheels (``pip install
  --no-deps --only-binary :all:``; wheels are kept in the cache so a rerun needs no network), and
  puts ``buggy/`` on its ``sys.path`` with a ``.pth`` file;
* checks that the case reproduces (its failing tests fail on ``buggy/``, and with
  ``ci_patches/<id>.fix.patch`` applied they and every regression test pass; the tree is put back
  afterwards) and raises ``CIBuildError`` with the reason when it does not;
* writes ``<out>/<id>/case.json``: the case's ``cases.json`` record with ``ci_cases.json``'s overrides
  and a ``ci`` entry from which ``oracle.py`` reads the buggy and fixed texts without git mirrors.

That is the layout ``run.py`` expects (``run.py --work <out> --only <id>``).  Stdlib, pip and a Python
of each case's minor version (the running one, a pyenv one, or ``pythonX.Y`` on PATH).  Usage::

    python benchmarks/realbugs/ci_cases.py --out /tmp/realbugs-ci
    python benchmarks/realbugs/ci_cases.py --out /tmp/realbugs-ci --only thefuck-31
    python benchmarks/realbugs/ci_cases.py --make-patches --mirror-dir /work/.mirror   # maintainers

The cache folder is ``--cache``, else ``$SEMCODER_REALBUGS_CI_CACHE``, else
``$XDG_CACHE_HOME/semcoder/realbugs-ci`` (``~/.cache/semcoder/realbugs-ci``).  ``--make-patches``
regenerates the vendored patches from the git mirrors and the sdists (and records in
``ci_cases.json`` how the built tree still differs from the buggy commit).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.realbugs import build as full  # noqa: E402
from benchmarks.realbugs import oracle  # noqa: E402

META_FILE = HERE / "ci_cases.json"
PATCH_DIR = oracle.CI_PATCH_DIR
DEFAULT_INDEX = "https://pypi.org/simple/"
TEST_TIMEOUT = 300.0
PIP_TIMEOUT = 600.0
NET_TIMEOUT = 60.0

Log = Callable[[str], None]


class CIBuildError(RuntimeError):
    """A CI case cannot be built or does not reproduce; the message says why."""


def _stderr(msg: str) -> None:
    print(f"[ci_cases] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ metadata


def default_cache() -> Path:
    if os.environ.get("SEMCODER_REALBUGS_CI_CACHE"):
        return Path(os.environ["SEMCODER_REALBUGS_CI_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "semcoder" / "realbugs-ci"


def load_meta(path: Path = META_FILE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def entries(only: list[str] | None = None, meta: dict | None = None) -> list[dict]:
    """The entries of ``ci_cases.json`` (those named in ``only``, in that file's order)."""
    all_entries = (meta or load_meta())["cases"]
    known = {e["id"] for e in all_entries}
    unknown = sorted(set(only or []) - known)
    if unknown:
        raise CIBuildError(f"not CI cases: {', '.join(unknown)} (ci_cases.json has {', '.join(sorted(known))})")
    return [e for e in all_entries if not only or e["id"] in only]


def case_ids() -> list[str]:
    return [e["id"] for e in entries()]


def case_record(entry: dict) -> dict:
    """The case's ``cases.json`` record with the entry's overrides (no build information yet)."""
    rec = copy.deepcopy(oracle.load_case(entry["id"]))
    rec.update(copy.deepcopy(entry.get("record", {})))
    return rec


def load_built(out: Path, case_id: str) -> dict:
    """The record ``build_case`` wrote for ``case_id`` under ``out``."""
    path = Path(out) / case_id / "case.json"
    if not path.is_file():
        raise CIBuildError(f"{case_id} is not built under {out} (no {path})")
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- sdists


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def index_url() -> str:
    url = os.environ.get("REALBUGS_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    return url if url.endswith("/") else url + "/"


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)


def _from_index(sdist: dict, index: str, dest: Path) -> None:
    """Find ``sdist['filename']`` on the index's simple page of the project and download it to ``dest``."""
    project = re.sub(r"[-_.]+", "-", sdist["name"]).lower()
    page_url = urljoin(index, project + "/")
    ctx = _ssl_context()
    req = urllib.request.Request(page_url, headers={"Accept": "text/html", "User-Agent": "semcoder-realbugs-ci"})
    with urllib.request.urlopen(req, timeout=NET_TIMEOUT, context=ctx) as resp:
        page = resp.read().decode("utf-8", errors="replace")
    hrefs = [h for h in re.findall(r'href="([^"]+)"', page)
             if Path(urlsplit(urldefrag(h)[0]).path).name == sdist["filename"]]
    if not hrefs:
        raise CIBuildError(f"{page_url} lists no {sdist['filename']}")
    url, fragment = urldefrag(urljoin(page_url, hrefs[0].replace("&amp;", "&")))
    if fragment.startswith("sha256=") and fragment[7:] != sdist["sha256"]:
        raise CIBuildError(f"{page_url} gives sha256 {fragment[7:]} for {sdist['filename']}, "
                           f"ci_cases.json pins {sdist['sha256']}")
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "semcoder-realbugs-ci"})
        with urllib.request.urlopen(req, timeout=NET_TIMEOUT, context=ctx) as resp, tmp.open("wb") as fh:
            shutil.copyfileobj(resp, fh)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _with_pip(sdist: dict, dest: Path) -> None:
    """``pip download`` of the sdist (builds its metadata: old setup.py files may fail on a new Python)."""
    with tempfile.TemporaryDirectory(prefix="realbugs-ci-pip-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp,
             f"{sdist['name']}=={sdist['version']}"],
            capture_output=True, text=True, timeout=PIP_TIMEOUT, env=full.VenvBuilder.pip_env())
        got = Path(tmp) / sdist["filename"]
        if not got.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise CIBuildError(f"pip download failed (rc {proc.returncode}): {' | '.join(tail)}")
        shutil.move(str(got), dest)


def fetch_sdist(entry: dict, cache: Path, log: Log = _stderr) -> Path:
    """The case's sdist in ``cache/sdists``, downloaded if it is not there; its sha256 is checked."""
    sdist = entry["sdist"]
    folder = cache / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / sdist["filename"]
    if dest.is_file():
        if sha256_of(dest) == sdist["sha256"]:
            return dest
        log(f"{dest} has the wrong sha256; downloading it again")
        dest.unlink()
    errors = []
    for name, get in (("index " + index_url(), lambda: _from_index(sdist, index_url(), dest)),
                      ("pip download", lambda: _with_pip(sdist, dest))):
        try:
            get()
        except CIBuildError as exc:
            if "sha256" in str(exc):
                raise
            errors.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # network errors of every kind
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        got = sha256_of(dest)
        if got != sdist["sha256"]:
            dest.unlink()
            raise CIBuildError(f"{sdist['filename']} from {name} has sha256 {got}, ci_cases.json pins "
                               f"{sdist['sha256']}")
        log(f"downloaded {sdist['filename']} ({dest.stat().st_size} bytes) from {name}")
        return dest
    raise CIBuildError(
        f"cannot get the sdist {sdist['filename']} of case {entry['id']}: it is not in the cache "
        f"({folder}) and the package index cannot be reached. Put the file (sha256 {sdist['sha256']}) "
        f"there or make PyPI reachable. Tried: " + " || ".join(errors))


def extract_sdist(sdist: Path, dest: Path) -> None:
    """The sdist's files (without its top folder, ``PKG-INFO`` and ``*.egg-info``) into ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tf:
        members = []
        for member in tf.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            rel = parts[1]
            top = rel.split("/", 1)[0]
            if top == "PKG-INFO" or top.endswith(".egg-info"):
                continue
            member.name = rel
            members.append(member)
        tf.extractall(dest, members=members, filter="data")


# ------------------------------------------------------------------------------------------ patches


def _safe(tree: Path, rel: str) -> Path:
    target = (tree / rel).resolve()
    if rel.startswith("/") or not target.is_relative_to(tree.resolve()):
        raise CIBuildError(f"patch path {rel!r} leaves {tree}")
    return target


def apply_patch(tree: Path, patch: Path) -> dict[str, bytes | None]:
    """Apply a git-style patch to ``tree`` (pure Python, exact context).  Returns the previous contents of
    the files it touched (None: the file did not exist), for ``restore``."""
    try:
        file_patches = oracle.parse_patch(patch.read_bytes().decode("utf-8", errors="surrogateescape"))
    except (OSError, oracle.OracleError) as exc:
        raise CIBuildError(f"cannot read the patch {patch}: {exc}") from exc
    saved: dict[str, bytes | None] = {}
    writes: dict[Path, bytes | None] = {}
    for fp in file_patches:
        for rel in {fp.old, fp.new} - {None}:
            target = _safe(tree, rel)
            saved.setdefault(rel, target.read_bytes() if target.is_file() else None)
        old_text = ""
        if fp.old is not None:
            data = saved[fp.old]
            if data is None:
                raise CIBuildError(f"{patch.name}: {fp.old} is not in {tree}")
            old_text = data.decode("utf-8", errors="surrogateescape")
        try:
            new_text = oracle.apply_file_patch(old_text, fp)
        except oracle.OracleError as exc:
            raise CIBuildError(f"{patch.name} does not apply to {tree}: {exc}") from exc
        if fp.old is not None and fp.old != fp.new:
            writes[_safe(tree, fp.old)] = None
        if fp.new is not None:
            writes[_safe(tree, fp.new)] = new_text.encode("utf-8", errors="surrogateescape")
    for target, data in writes.items():
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return saved


def restore(tree: Path, saved: dict[str, bytes | None]) -> None:
    for rel, data in saved.items():
        target = _safe(tree, rel)
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(data)


# ---------------------------------------------------------------------------------------------- venv


def find_python(version: str) -> Path:
    """An installed interpreter of minor ``version`` (``3.11``): the running one, a pyenv one (newest patch
    first), or ``pythonX.Y`` on PATH."""
    cands: list[Path] = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        cands.append(Path(getattr(sys, "_base_executable", None) or sys.executable))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = [d for d in pyenv.glob(f"{version}.*") if re.fullmatch(r"\d+\.\d+\.\d+", d.name)]
    cands += [d / "bin" / "python" for d in sorted(found, key=lambda d: int(d.name.split(".")[2]), reverse=True)]
    which = shutil.which(f"python{version}")
    if which:
        cands.append(Path(which))
    for exe in cands:
        if not exe.exists():
            continue
        proc = subprocess.run([str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip() == version:
            return exe
    raise CIBuildError(f"no Python {version} here (looked at the running interpreter, {pyenv}/{version}.*, "
                       f"python{version} on PATH)")


def build_venv(entry: dict, case_dir: Path, cache: Path, run: full.Runner) -> tuple[str, str]:
    """``case_dir/venv`` with the case's Python and its pinned wheels; returns (Python version, pytest version)."""
    venv = case_dir / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    exe = find_python(entry["python"])
    env = full.VenvBuilder.pip_env()
    rc, out = run([str(exe), "-m", "venv", str(venv)], env=env, timeout=PIP_TIMEOUT)
    if rc:
        raise CIBuildError(f"{entry['id']}: {exe} -m venv failed: {out.strip()[-400:]}")
    py = str(venv / "bin" / "python")
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pins = entry["pins"]
    install = [py, "-m", "pip", "install", "-q", "--no-deps", "--only-binary", ":all:", "--no-index",
               "--find-links", str(wheels), *pins]
    rc, out = run(install, env=env, timeout=PIP_TIMEOUT)
    if rc:  # not all cached yet
        rc, out = run([py, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(wheels),
                       *pins], env=env, timeout=PIP_TIMEOUT)
        if rc:
            raise CIBuildError(
                f"{entry['id']}: cannot download the pinned wheels for Python {entry['python']} "
                f"({' '.join(pins)}): not all in the cache ({wheels}) and the package index cannot be "
                f"reached or lacks them: {out.strip()[-600:]}")
        rc, out = run(install, env=env, timeout=PIP_TIMEOUT)
        if rc:
            raise CIBuildError(f"{entry['id']}: installing the pinned wheels failed: {out.strip()[-600:]}")
    full.write_pth(venv, case_dir / "buggy")
    rc, out = run([py, "-c", "import platform, pytest; print(platform.python_version(), pytest.__version__)"],
                  env=env, timeout=120)
    if rc:
        raise CIBuildError(f"{entry['id']}: pytest does not import in the venv: {out.strip()[-400:]}")
    python_version, pytest_version = out.split()[-2:]
    return python_version, pytest_version


# -------------------------------------------------------------------------------------- reproduction


def check_reproduction(rec: dict, case_dir: Path, run: full.Runner) -> dict:
    """Run the failing tests on ``buggy/``, then the bug's test files with the vendored fix applied (the tree
    is put back afterwards).  Raises CIBuildError unless every failing test fails (or does not collect) on
    buggy and it and every regression test pass with the fix."""
    env = rec.get("test_env") or {}
    failing = [t.replace("::()", "") for t in rec["failing_tests"]]
    files = sorted({t.split("::")[0] for t in failing} | set(rec["bugsinpy_test_files"]))
    tree = case_dir / "buggy"
    r_bug = full.run_pytest(case_dir, failing, run, "buggy-failing", TEST_TIMEOUT, env)
    saved = apply_patch(tree, PATCH_DIR / rec["ci"]["fix_patch"])
    try:
        r_fix = full.run_pytest(case_dir, files, run, "fixed-files", TEST_TIMEOUT, env)
    finally:
        restore(tree, saved)
    problems = []
    # a test file that does not collect on buggy only where cases.json says so (the fix adds a name)
    fails = {"failed", "collect-error"} if "collection error" in rec.get("buggy_failure_kind", []) else {"failed"}
    for t in failing:
        outcome, _ = full.outcome_of(r_bug["results"], t)
        if outcome not in fails:
            problems.append(f"{t} is {outcome} on the buggy tree (should fail)")
        outcome, _ = full.outcome_of(r_fix["results"], t)
        if outcome != "passed":
            problems.append(f"{t} is {outcome} with the fix (should pass)")
    for node in [*rec.get("failing_test_nodes", []), *rec.get("regression_tests", [])]:
        got = r_fix["results"].get(node.replace("::()", ""), "missing")
        if got != "passed":
            problems.append(f"{node} is {got} with the fix (should pass)")
    if problems:
        raise CIBuildError(
            f"{rec['id']} does not reproduce: " + "; ".join(problems)
            + f"\n--- buggy run:\n{r_bug['tail']}\n--- fixed run:\n{r_fix['tail']}\n(log: {run.logfile})")
    return {"buggy_failing": full.count_outcomes(r_bug["results"]), "fixed_files": full.count_outcomes(r_fix["results"])}


# --------------------------------------------------------------------------------------------- build


def build_case(entry: dict, out: Path, cache: Path, check: bool = True, log: Log = _stderr) -> dict:
    """Build one case into ``out/<id>`` (from scratch) and return its record (also in ``out/<id>/case.json``)."""
    t0 = time.monotonic()
    out = Path(out).resolve()
    rec = case_record(entry)
    case_dir = out / entry["id"]
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    run = full.Runner(case_dir / "build.log")
    sdist = fetch_sdist(entry, cache, log)
    extract_sdist(sdist, case_dir / "buggy")
    apply_patch(case_dir / "buggy", PATCH_DIR / entry["buggy_patch"])
    t_venv = time.monotonic()
    python_version, pytest_version = build_venv(entry, case_dir, cache, run)
    rec.update(
        python_version=python_version,
        pytest_version=pytest_version,
        dropped_requirements=[],
        extra_requirements=[],
        install=f"{len(entry['pins'])} pinned wheels (ci_cases.json); project via .pth (sdist {sdist.name})",
        env_notes=[f"CI build from the sdist {sdist.name} and ci_patches/ (ci_cases.py)", *entry.get("notes", [])],
        venv_build_seconds=round(time.monotonic() - t_venv, 1),
        ci={"case_dir": str(case_dir), "sdist": entry["sdist"], "buggy_patch": entry["buggy_patch"],
            "fix_patch": entry["fix_patch"], "pins": entry["pins"]},
    )
    if check:
        rec["ci"]["reproduction"] = check_reproduction(rec, case_dir, run)
        rec["reproduces"] = True
        rec["reason"] = "fails on buggy, passes with ci_patches' fix (checked by ci_cases.py)"
    rec["build_seconds"] = round(time.monotonic() - t0, 1)
    (case_dir / "case.json").write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log(f"{entry['id']}: built in {rec['build_seconds']}s (Python {python_version}, pytest {pytest_version})"
        + (", reproduces" if check else ""))
    return rec


def build(out: Path, only: list[str] | None = None, cache: Path | None = None, check: bool = True,
          log: Log = _stderr) -> list[dict]:
    """Build the CI cases (all, or ``only``) into ``out``; raises CIBuildError on the first that fails."""
    cache = Path(cache or default_cache())
    return [build_case(entry, Path(out), cache, check, log) for entry in entries(only)]


# ------------------------------------------------------------------------------- patches (maintainers)


def _git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    if proc.returncode:
        raise CIBuildError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="surrogateescape")


def make_patches(mirror_dir: Path, only: list[str] | None, cache: Path, log: Log = _stderr) -> None:
    """Regenerate ``ci_patches/<id>.{buggy,fix}.patch`` from the mirrors and the sdists, check that the
    pure-Python applier reproduces the commits' texts, and record in ``ci_cases.json`` how the built tree
    still differs from the buggy commit."""
    meta = load_meta()
    PATCH_DIR.mkdir(exist_ok=True)
    for entry in entries(only, meta):
        rec = case_record(entry)
        gitdir = str(oracle.mirror_gitdir(rec, mirror_dir))
        buggy, fixed = rec["buggy_commit"], rec["fixed_commit"]

        def show(commit: str, rel: str, gitdir: str = gitdir) -> bytes | None:
            return full.git_file(Path(gitdir), commit, rel)

        sdist = fetch_sdist(entry, cache, log)
        with tempfile.TemporaryDirectory(prefix="realbugs-ci-patch-") as tmp:
            tree, repo = Path(tmp) / "tree", Path(tmp) / "repo"
            extract_sdist(sdist, tree)
            wanted = {rel: show(buggy, rel) for rel in [*rec["fix_diff_stats"], *entry.get("support_files", [])]}
            wanted |= {rel: show(fixed, rel) for rel in rec["test_files_from_fixed"]}
            repo.mkdir()
            _git("init", "-q", cwd=repo)
            for rel in wanted:
                if (tree / rel).is_file():
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(tree / rel, repo / rel)
            _git("add", "-A", cwd=repo)
            _git("-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-q", "--allow-empty", "-m",
                 "sdist", cwd=repo)
            for rel, data in wanted.items():
                if data is None:
                    (repo / rel).unlink(missing_ok=True)
                else:
                    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    (repo / rel).write_bytes(data)
            _git("add", "-A", cwd=repo)
            buggy_patch = _git("diff", "--cached", "--no-renames", "--no-color", "--no-ext-diff", cwd=repo)
            fix_files = list(rec["fix_diff_stats"])
            fix_patch = full.git(Path(gitdir), "diff", "--no-renames", "--no-color", "--no-ext-diff", buggy, fixed,
                                 "--", *fix_files)
            (PATCH_DIR / entry["buggy_patch"]).write_text(buggy_patch, encoding="utf-8")
            (PATCH_DIR / entry["fix_patch"]).write_text(fix_patch, encoding="utf-8")

            # the applier reproduces the commits' texts
            apply_patch(tree, PATCH_DIR / entry["buggy_patch"])
            for rel, data in wanted.items():
                got = (tree / rel).read_bytes() if (tree / rel).is_file() else None
                if got != data:
                    raise CIBuildError(f"{entry['id']}: the buggy patch does not reproduce {rel}")
            apply_patch(tree, PATCH_DIR / entry["fix_patch"])
            for rel in fix_files:
                got = (tree / rel).read_bytes() if (tree / rel).is_file() else None
                if got != show(fixed, rel):
                    raise CIBuildError(f"{entry['id']}: the fix patch does not reproduce {rel}")
            restore(tree, {rel: show(buggy, rel) for rel in fix_files})

            # how the built tree still differs from the buggy commit (tests: the fixed commit's, as wanted)
            differ, missing = [], []
            for rel in full.git(Path(gitdir), "ls-tree", "-r", "--name-only", buggy).splitlines():
                if rel in wanted:
                    continue
                if not (tree / rel).is_file():
                    if rel.endswith(".py"):
                        missing.append(rel)
                elif (tree / rel).read_bytes() != show(buggy, rel):
                    differ.append(rel)
            entry["tree_vs_buggy_commit"] = {"differ": differ, "missing_py": missing}
        log(f"{entry['id']}: {entry['buggy_patch']} {len(buggy_patch.encode())} bytes, {entry['fix_patch']} "
            f"{len(fix_patch.encode())} bytes; tree differs from the buggy commit in {len(differ)} files, "
            f"lacks {len(missing)} .py files")
    META_FILE.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="folder to build the cases into (<out>/<id>/{buggy,venv,case.json})")
    ap.add_argument("--only", nargs="*", action="extend", metavar="ID", help="case ids (default: all CI cases)")
    ap.add_argument("--cache", type=Path, default=None, help=f"sdist and wheel cache (default {default_cache()})")
    ap.add_argument("--no-check", action="store_true", help="do not check that the cases reproduce")
    ap.add_argument("--list", action="store_true", help="print the CI case ids and exit")
    ap.add_argument("--make-patches", action="store_true",
                    help="maintainers: regenerate ci_patches/ from the git mirrors (needs --mirror-dir)")
    ap.add_argument("--mirror-dir", type=Path, default=Path("/work/.mirror"))
    args = ap.parse_args(argv)
    cache = args.cache or default_cache()
    try:
        if args.list:
            print("\n".join(case_ids()))
        elif args.make_patches:
            make_patches(args.mirror_dir, args.only, cache)
        elif args.out is None:
            ap.error("--out is required")
        else:
            t0 = time.monotonic()
            recs = build(args.out, args.only, cache, check=not args.no_check)
            _stderr(f"{len(recs)} CI cases built under {args.out.resolve()} in {time.monotonic() - t0:.0f}s")
    except CIBuildError as exc:
        _stderr(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
