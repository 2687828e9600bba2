#!/usr/bin/env python3
"""Build the real-bug suite offline from BugsInPy's metadata and the projects' git history.

For every bug this script

* extracts the buggy commit into ``<out>/<project>-<n>/buggy/`` (``git archive``, no ``.git``) and copies
  in the fixed commit's version of the bug's test file(s) and of any other changed test-side file
  (fixtures), as BugsInPy's checkout does;
* creates ``<out>/<project>-<n>/venv`` with the installed pyenv Python nearest BugsInPy's version among
  those >= ``--min-python`` (default 3.8, what the tool under test supports), installs BugsInPy's
  pinned requirements (dropping, and recording, the pins that cannot or must not be installed), pytest,
  the project's own test extras and the project itself in editable mode;
* runs the bug's tests on the buggy tree and on the buggy tree with the fix applied (the fixed commit's
  version of every changed non-test file), plus the whole test file(s) for the regression set;
* maps every hunk of the buggy->fixed source diff to the enclosing function(s) with ``ast``;
* writes one metadata record per bug into ``cases.json`` (no upstream code: the fix is recomputed from
  the git history at run time, see ``oracle.py``).

Stdlib only; runs on Python 3.11.  Usage::

    python benchmarks/realbugs/build.py --mirror-dir /work/.mirror --out /work/realbugs
    python benchmarks/realbugs/build.py --only tqdm:1 cookiecutter:2
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CASES = HERE / "cases.json"

DEFAULT_BUGS: list[tuple[str, int]] = (
    [("youtube-dl", n) for n in range(26, 44)]
    + [("thefuck", n) for n in range(26, 33)]
    + [("tqdm", n) for n in range(1, 8)]
    + [("cookiecutter", n) for n in (1, 2, 4)]
)

# Distribution names of the projects themselves: their pins in BugsInPy's frozen environments would
# shadow the checkout, so they are dropped (the checkout is installed in editable mode instead).
SELF_DISTS = {
    "youtube-dl": {"youtube-dl", "youtube_dl"},
    "thefuck": {"thefuck"},
    "tqdm": {"tqdm"},
    "cookiecutter": {"cookiecutter"},
}

# Pins dropped whatever the Python: not installable from an index, or a runner this suite never uses.
ALWAYS_DROP = {
    "pkg-resources": "Debian/Ubuntu pip-freeze artefact, not a real distribution",
    "tox": "tests are run with pytest directly, never through tox",
}

# Test extras from the project's own files that are not needed to run tests (coverage, lint, CI upload).
SKIP_EXTRAS = {
    "pytest", "pytest-cov", "coverage", "coveralls", "codecov", "flake8", "pep8", "pyflakes",
    "pycodestyle", "tox", "pylint", "black", "isort", "mypy", "nose-timer", "pre-commit", "twine",
    "sphinx", "docutils",
    # heavy ML frameworks that tqdm's tox env lists for its keras/tensorflow tests; no selected bug needs them
    "tensorflow", "keras", "torch",
}

# Newest pip/setuptools/wheel/pytest that still support a given Python minor.  setuptools stays below 71
# everywhere: from 71 on it no longer isolates its vendored packages, so BugsInPy's old pins break it
# (``importlib-metadata==1.6`` shadows the backport it needs on Python < 3.10: ``pip install -e`` fails
# with "module 'importlib_metadata' has no attribute 'EntryPoints'") and its vendored typeguard
# registers a ``pytest11`` entry point that old pinned pytests (thefuck's 3.10.1) die loading.
DEFAULT_MIN_PYTHON = "3.8"
TOOL_CAPS = {
    (3, 6): {"pip": "pip<22", "setuptools": "setuptools<59.7", "wheel": "wheel<0.38", "pytest": "pytest<7.1"},
    (3, 7): {"pip": "pip<24.1", "setuptools": "setuptools<68.1", "wheel": "wheel<0.43", "pytest": "pytest<7.5"},
    (3, 8): {"pip": "pip<25.1", "setuptools": "setuptools<71", "wheel": "wheel<0.46", "pytest": "pytest<8.4"},
}
DEFAULT_CAPS = {"pip": "pip", "setuptools": "setuptools<71", "wheel": "wheel", "pytest": "pytest"}

TEST_DIR_NAMES = {"test", "tests", "testing"}

# Tests run under LC_ALL=LANG=C.UTF-8 unless a bug needs otherwise.  cookiecutter-1 is an
# ``open()``-without-encoding bug: it only shows where the locale's preferred encoding is not UTF-8
# (BugsInPy's Docker image ran Python 3.6 under the C/POSIX locale, where that encoding is ASCII).
# Python 3.7+ turns on UTF-8 mode (PEP 540) under the C locale, and coerces it to C.UTF-8 when LC_ALL is
# unset (PEP 538); PYTHONUTF8=0 and PYTHONCOERCECLOCALE=0 switch both off, so the preferred encoding is
# ASCII again, as on 3.6 (these two variables are ignored by 3.6).
BASE_TEST_ENV = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
TEST_ENV_OVERRIDES = {
    "cookiecutter-1": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}

log = logging.getLogger("realbugs")


# --------------------------------------------------------------------------------------------- helpers


def git(gitdir: Path, *args: str, binary: bool = False, check: bool = True):
    proc = subprocess.run(["git", "--git-dir", str(gitdir), *args], capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout if binary else proc.stdout.decode("utf-8", errors="replace")


def git_file(gitdir: Path, commit: str, path: str) -> bytes | None:
    proc = subprocess.run(["git", "--git-dir", str(gitdir), "show", f"{commit}:{path}"], capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def norm_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def decode_text(data: bytes) -> str:
    """Decode a requirements file that may be UTF-16 (with or without BOM) or UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00":
        return data.decode("utf-16-le")
    return data.decode("utf-8", errors="replace")


def is_test_path(path: str) -> bool:
    parts = path.split("/")
    base = parts[-1]
    if any(p in TEST_DIR_NAMES for p in parts[:-1]):
        return True
    return base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"


@dataclass
class Runner:
    """Runs commands, teeing their output into a per-case log file."""

    logfile: Path

    def __call__(self, cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                 timeout: float = 1800) -> tuple[int, str]:
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout)
            rc, out = proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
        except subprocess.TimeoutExpired as exc:
            rc = 124
            out = ((exc.stdout or b"") + (exc.stderr or b"")).decode("utf-8", errors="replace")
            out += f"\n[realbugs] TIMEOUT after {timeout}s"
        with self.logfile.open("a", encoding="utf-8") as fh:
            fh.write(f"\n$ {shlex.join(cmd)}  (cwd={cwd}, rc={rc}, {time.monotonic() - t0:.1f}s)\n{out}\n")
        return rc, out


# ------------------------------------------------------------------------------------------ metadata


@dataclass
class Bug:
    project: str
    number: int
    info: dict
    run_test: str
    requirements: str
    setup_sh: str
    github_url: str

    @property
    def id(self) -> str:
        return f"{self.project}-{self.number}"

    @property
    def buggy(self) -> str:
        return self.info["buggy_commit_id"]

    @property
    def fixed(self) -> str:
        return self.info["fixed_commit_id"]

    @property
    def test_files(self) -> list[str]:
        return [t.strip() for t in self.info.get("test_file", "").split(";") if t.strip()]


def parse_kv(text: str) -> dict:
    return {k: v for k, v in re.findall(r'^\s*(\w+)\s*=\s*"([^"]*)"', text, re.M)}


def load_bug(bugsinpy: Path, rev: str, project: str, number: int) -> Bug:
    base = f"projects/{project}"
    def show(rel: str) -> bytes | None:
        return git_file(bugsinpy, rev, f"{base}/{rel}")
    info_raw = show(f"bugs/{number}/bug.info")
    if info_raw is None:
        raise RuntimeError(f"BugsInPy has no {project} bug {number}")
    pinfo = parse_kv(decode_text(show("project.info") or b""))
    return Bug(
        project=project,
        number=number,
        info=parse_kv(decode_text(info_raw)),
        run_test=decode_text(show(f"bugs/{number}/run_test.sh") or b""),
        requirements=decode_text(show(f"bugs/{number}/requirements.txt") or b""),
        setup_sh=decode_text(show(f"bugs/{number}/setup.sh") or b""),
        github_url=pinfo.get("github_url", "").rstrip("/"),
    )


def mirror_gitdir(mirror_dir: Path, url: str) -> Path:
    owner, name = url.rstrip("/").split("/")[-2:]
    name = name.removesuffix(".git")
    for cand in (mirror_dir / f"{owner}+{name}" / "repo", mirror_dir / f"{owner}+{name}",
                 mirror_dir / f"{name}.git", mirror_dir / name):
        if (cand / "HEAD").exists() and (cand / "objects").exists():
            return cand
    raise RuntimeError(f"no git mirror of {url} under {mirror_dir}")


def unittest_to_pytest(dotted: str, exists) -> str:
    """``test.test_utils.TestUtil.test_x`` -> ``test/test_utils.py::TestUtil::test_x``."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        path = "/".join(parts[:k]) + ".py"
        if exists(path):
            return "::".join([path, *parts[k:]])
    raise RuntimeError(f"cannot map unittest id {dotted!r} to a file")


def parse_run_test(text: str, exists) -> tuple[list[str], list[str]]:
    """Return (pytest node ids, original command lines) from BugsInPy's run_test.sh."""
    ids: list[str] = []
    commands: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        commands.append(line)
        toks = shlex.split(line)
        if "unittest" in toks:
            args = [t for t in toks[toks.index("unittest") + 1:] if not t.startswith("-")]
            ids += [unittest_to_pytest(a, exists) for a in args]
            continue
        while toks and (toks[0].startswith("python") or toks[0] == "-m"):
            toks = toks[1:]
        if toks and toks[0] in ("pytest", "py.test", "tox"):
            toks = toks[1:]
        ids += [t for t in toks if not t.startswith("-") and t != "--"]
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i.replace("::()", ""), None)
    return list(seen), commands


# -------------------------------------------------------------------------------------- diff & ast


def diff_files(gitdir: Path, a: str, b: str) -> list[dict]:
    out = []
    for line in git(gitdir, "diff", "--no-renames", "--numstat", a, b).splitlines():
        added, deleted, path = line.split("\t", 2)
        out.append({
            "file": path,
            "added": None if added == "-" else int(added),
            "deleted": None if deleted == "-" else int(deleted),
            "test": is_test_path(path),
        })
    return out


HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)


def hunks(gitdir: Path, a: str, b: str, path: str) -> list[tuple[int, int, int, int]]:
    text = git(gitdir, "diff", "--no-renames", "-U0", a, b, "--", path)
    return [(int(m[1]), int(m[2] or 1), int(m[3]), int(m[4] or 1)) for m in HUNK_RE.finditer(text)]


def def_spans(source: str) -> list[tuple[str, int, int, str]]:
    """(qualname, start, end, kind) for every class and def; start includes decorators."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    spans: list[tuple[str, int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qual = prefix + child.name
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                spans.append((qual, start, child.end_lineno or child.lineno, kind))
                visit(child, qual + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def unit_of(spans, line: int) -> tuple[str, str] | None:
    """The repair unit that holds ``line``: the outermost def (with its class path), else the
    innermost class (class body), else None (module level)."""
    containing = [s for s in spans if s[1] <= line <= s[2]]
    if not containing:
        return None
    containing.sort(key=lambda s: s[0].count("."))  # outermost first
    for qual, _s, _e, kind in containing:
        if kind == "function":
            return qual, "function"
    return containing[-1][0], "class-body"


def fixed_functions(gitdir: Path, buggy: str, fixed: str, path: str) -> list[dict]:
    src_b = (git_file(gitdir, buggy, path) or b"").decode("utf-8", errors="replace")
    src_f = (git_file(gitdir, fixed, path) or b"").decode("utf-8", errors="replace")
    sb, sf = def_spans(src_b), def_spans(src_f)
    span_b = {q: (s, e) for q, s, e, _ in sb}
    span_f = {q: (s, e) for q, s, e, _ in sf}
    units: dict[tuple[str, str], dict] = {}

    def add(qual: str, kind: str, hunk_range: tuple[int, int]) -> None:
        rec = units.setdefault((qual, kind), {"file": path, "qualname": qual, "kind": kind, "hunks": []})
        if hunk_range not in rec["hunks"]:
            rec["hunks"].append(hunk_range)

    for a, b, c, d in hunks(gitdir, buggy, fixed, path):
        hunk_b = (a, a + b - 1) if b else (a, a)  # b == 0: pure insertion after line a
        found = False
        for line in range(a, a + b):
            u = unit_of(sb, line)
            if u:
                add(*u, hunk_b)
                found = True
        fixed_units = {unit_of(sf, line) for line in range(c, c + d)} - {None}
        for u in sorted(fixed_units):
            add(*u, hunk_b)
            found = True
        if b == 0 and not any(k == "function" for _q, k in fixed_units):
            # pure insertion: the buggy unit around the insertion point, when both sides agree
            u = unit_of(sb, a)
            if u and u == unit_of(sb, a + 1):
                add(*u, hunk_b)
                found = True
        if not found or (b and any(unit_of(sb, ln) is None for ln in range(a, a + b))):
            add("<module>", "module", hunk_b)
    out = []
    for (qual, kind), rec in sorted(units.items(), key=lambda kv: (kv[1]["hunks"][0], kv[0])):
        rec["hunks"] = [list(h) for h in sorted(rec["hunks"])]
        if kind == "function":
            rec["start"], rec["end"] = span_b.get(qual, (None, None))
            rec["fixed_start"], rec["fixed_end"] = span_f.get(qual, (None, None))
            rec["in_buggy"] = qual in span_b
        else:  # class body or module level: the changed line range itself
            rec["start"] = min(h[0] for h in rec["hunks"])
            rec["end"] = max(h[1] for h in rec["hunks"])
            rec["fixed_start"] = rec["fixed_end"] = None
            rec["in_buggy"] = True
        out.append(rec)
    return out


# ----------------------------------------------------------------------------------------- venv


def installed_pythons(pyenv_versions: Path) -> list[tuple[tuple[int, ...], Path]]:
    out = []
    for d in sorted(pyenv_versions.iterdir()) if pyenv_versions.is_dir() else []:
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", d.name)
        exe = d / "bin" / "python"
        if m and exe.exists():
            out.append((tuple(int(x) for x in m.groups()), exe))
    return out


def parse_minor(text: str) -> tuple[int, int]:
    m = re.match(r"^\s*(\d+)\.(\d+)", text or "")
    if not m:
        raise ValueError(f"not a Python version: {text!r}")
    return int(m[1]), int(m[2])


def python_candidates(wanted: str, pyenv_versions: Path,
                      min_python: tuple[int, int] = (3, 6)) -> list[tuple[str, Path]]:
    """Installed Pythons >= ``min_python``, nearest ``wanted`` first."""
    m = re.match(r"(\d+)\.(\d+)", wanted or "3.7")
    want = (int(m[1]), int(m[2])) if m else (3, 7)
    floor = max((3, 6), tuple(min_python))
    cands = [(v, p) for v, p in installed_pythons(pyenv_versions) if v[0] == 3 and v[:2] >= floor]
    # same minor first, then the nearest newer minors, then older ones (a BugsInPy version below the
    # floor thus gets the floor's minor first, then the next ones up)
    cands.sort(key=lambda vp: (abs(vp[0][1] - want[1]) + (0.5 if vp[0][1] < want[1] else 0), -vp[0][2]))
    return [(".".join(map(str, v)), p) for v, p in cands]


@dataclass
class Req:
    line: str
    name: str | None


def parse_requirements(text: str) -> list[Req]:
    reqs = []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        egg = re.search(r"#egg=([A-Za-z0-9._-]+)", raw)
        name = norm_name(egg[1]) if egg else (norm_name(m[1]) if m and not line.startswith("-") else None)
        reqs.append(Req(raw.strip(), name))
    return reqs


@dataclass
class Env:
    python: str
    dropped: list[dict] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    pytest: str = ""
    install: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # time taken to build the venv (kept when a later run reuses it)


class VenvBuilder:
    def __init__(self, out: Path, pyenv_versions: Path, timeout: float,
                 min_python: tuple[int, int] = parse_minor(DEFAULT_MIN_PYTHON)):
        self.out = out
        self.pyenv_versions = pyenv_versions
        self.timeout = timeout
        self.min_python = tuple(min_python)
        self.probe_path = out / ".reqprobe.json"
        self.probe: dict = json.loads(self.probe_path.read_text()) if self.probe_path.exists() else {}

    def save_probe(self) -> None:
        self.probe_path.write_text(json.dumps(self.probe, indent=1, sort_keys=True))

    @staticmethod
    def pip_env() -> dict:
        env = dict(os.environ)
        env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        return env

    def build(self, bug: Bug, gitdir: Path, case_dir: Path, run: Runner, force: bool) -> Env:
        venv = case_dir / "venv"
        marker = venv / ".realbugs-env.json"
        if marker.exists() and not force:
            data = json.loads(marker.read_text())
            if parse_minor(data["python"]) >= self.min_python:
                log.info("%s: reusing venv (%s)", bug.id, data["python"])
                return Env(**data)
            log.info("%s: venv has Python %s < --min-python %s; rebuilding", bug.id, data["python"],
                     ".".join(map(str, self.min_python)))
        errors = []
        wanted = bug.info.get("python_version", "")
        cands = python_candidates(wanted, self.pyenv_versions, self.min_python)
        if not cands:
            raise RuntimeError(f"no installed Python >= {'.'.join(map(str, self.min_python))} under "
                               f"{self.pyenv_versions}")
        for version, exe in cands:
            shutil.rmtree(venv, ignore_errors=True)
            t0 = time.monotonic()
            try:
                env = self._build_with(bug, gitdir, case_dir, venv, version, exe, run)
            except RuntimeError as exc:
                errors.append(f"{version}: {exc}")
                log.warning("%s: python %s failed: %s", bug.id, version, exc)
                continue
            env.seconds = round(time.monotonic() - t0, 1)
            if wanted and parse_minor(version) != parse_minor(wanted):
                why = (f"below --min-python {'.'.join(map(str, self.min_python))}"
                       if parse_minor(wanted) < self.min_python
                       else "not usable" if errors else "not installed")
                env.notes.insert(0, f"BugsInPy's Python {wanted} is {why}; built with {version}")
            if errors:
                env.notes.append("Pythons tried first and given up: " + " | ".join(errors))
            marker.write_text(json.dumps(env.__dict__, indent=1, sort_keys=True))
            return env
        raise RuntimeError("no Python worked: " + " | ".join(errors))

    def _build_with(self, bug: Bug, gitdir: Path, case_dir: Path, venv: Path, version: str, exe: Path,
                    run: Runner) -> Env:
        minor = tuple(int(x) for x in version.split(".")[:2])
        caps = TOOL_CAPS.get(minor, DEFAULT_CAPS)
        env = Env(python=version)
        penv = self.pip_env()
        rc, out = run([str(exe), "-m", "venv", str(venv)], env=penv, timeout=300)
        if rc:
            raise RuntimeError(f"venv creation failed: {out.strip()[-300:]}")
        py = str(venv / "bin" / "python")
        pip = [py, "-m", "pip"]
        rc, out = run([*pip, "install", "-q", "-U", caps["pip"], caps["setuptools"], caps["wheel"]],
                      env=penv, timeout=self.timeout)
        if rc:
            raise RuntimeError(f"pip bootstrap failed: {out.strip()[-300:]}")

        # 1. BugsInPy's frozen requirements, minus the pins that must not or cannot be installed.
        keep: list[str] = []
        for req in parse_requirements(bug.requirements):
            if req.line.startswith("-e") or "git+" in req.line:
                reason = "editable VCS checkout of the project itself (the buggy tree is installed instead)"
                env.dropped.append({"requirement": req.line, "reason": reason})
            elif req.name in SELF_DISTS.get(bug.project, {norm_name(bug.project)}):
                env.dropped.append({"requirement": req.line, "reason": "the project itself"})
            elif req.name in ALWAYS_DROP:
                env.dropped.append({"requirement": req.line, "reason": ALWAYS_DROP[req.name]})
            elif req.line.startswith("-"):
                env.dropped.append({"requirement": req.line, "reason": "pip option, not a requirement"})
            else:
                keep.append(req.line)
        key = hashlib.sha256(("\n".join(sorted(keep)) + f"|{minor}").encode()).hexdigest()[:16]
        known_bad = self.probe.get(key, {}).get("bad")
        if known_bad is not None:
            for line, reason in known_bad:
                env.dropped.append({"requirement": line, "reason": reason})
            keep = [k for k in keep if k not in dict(known_bad)]
        if keep:
            reqfile = case_dir / "requirements.install.txt"
            reqfile.write_text("\n".join(keep) + "\n")
            rc, out = run([*pip, "install", "--no-deps", "--prefer-binary", "-r", str(reqfile)],
                          env=penv, timeout=self.timeout)
            if rc and known_bad is None:
                # probe the pins one by one and keep those that install
                bad = []
                for line in keep:
                    rc1, out1 = run([*pip, "install", "--no-deps", "--prefer-binary", line], env=penv,
                                    timeout=self.timeout)
                    if rc1:
                        tail = [ln for ln in out1.strip().splitlines() if ln.strip()][-1:] or [""]
                        bad.append([line, f"pip install failed on Python {version}: {tail[0][:200]}"])
                for line, reason in bad:
                    env.dropped.append({"requirement": line, "reason": reason})
                self.probe[key] = {"bad": bad}
                self.save_probe()
                keep = [k for k in keep if k not in {b[0] for b in bad}]
            elif rc:
                raise RuntimeError(f"installing known-good requirements failed: {out.strip()[-300:]}")
            elif known_bad is None:
                self.probe[key] = {"bad": []}
                self.save_probe()
        env.install = f"requirements: {len(keep)} pins installed"

        constraints = case_dir / "constraints.txt"

        def freeze_constraints() -> None:
            _, frozen = run([*pip, "freeze", "--exclude-editable"], env=penv, timeout=300)
            lines = [ln for ln in frozen.splitlines() if "==" in ln and not ln.startswith("-")]
            constraints.write_text("\n".join(lines) + "\n")

        # 2. pytest that runs on this Python.
        rc, out = run([py, "-m", "pytest", "--version"], env=penv, timeout=300)
        if rc:
            if "No module named pytest" not in out:
                env.notes.append(f"pinned pytest did not start on Python {version}; replaced")
                run([*pip, "uninstall", "-y", "pytest"], env=penv, timeout=300)
            freeze_constraints()
            text = constraints.read_text().splitlines()
            # let pytest bring its own plugin-API deps if the pinned ones are too old for it
            text = [ln for ln in text if norm_name(ln.split("==")[0]) not in {"pluggy", "py", "attrs",
                                                                             "iniconfig", "packaging",
                                                                             "tomli", "exceptiongroup"}]
            constraints.write_text("\n".join(text) + "\n")
            rc, out = run([*pip, "install", "--prefer-binary", "-c", str(constraints), caps["pytest"]],
                          env=penv, timeout=self.timeout)
            if rc:
                raise RuntimeError(f"pytest install failed: {out.strip()[-300:]}")
        rc, out = run([py, "-m", "pytest", "--version"], env=penv, timeout=300)
        if rc:
            raise RuntimeError(f"pytest does not start: {out.strip()[-300:]}")
        m = re.search(r"(\d+\.\d+[\w.]*)", out)
        env.pytest = m[1] if m else out.strip()

        # 3. the project's own test extras (test_requirements.txt, tox.ini [testenv] deps).
        installed = {norm_name(ln.split("==")[0]) for ln in
                     run([*pip, "freeze"], env=penv, timeout=300)[1].splitlines() if "==" in ln}
        extras = [x for x in project_test_extras(gitdir, bug.buggy) if norm_name(x) not in installed]
        if extras:
            freeze_constraints()
            rc, out = run([*pip, "install", "--prefer-binary", "-c", str(constraints), *extras], env=penv,
                          timeout=self.timeout)
            if rc:  # one by one
                for x in extras:
                    rc1, _ = run([*pip, "install", "--prefer-binary", "-c", str(constraints), x], env=penv,
                                 timeout=self.timeout)
                    (env.extras if rc1 == 0 else env.notes).append(x if rc1 == 0 else f"test extra {x} failed")
            else:
                env.extras += extras

        # 4. the project itself, editable.
        buggy_dir = case_dir / "buggy"
        if (buggy_dir / "setup.py").exists() or (buggy_dir / "pyproject.toml").exists():
            freeze_constraints()
            ienv = dict(penv, SETUPTOOLS_SCM_PRETEND_VERSION=scm_version(gitdir, bug.buggy))
            rc, out = run([*pip, "install", "--prefer-binary", "-c", str(constraints), "-e", str(buggy_dir)],
                          env=ienv, timeout=self.timeout)
            if rc:
                rc, out = run([*pip, "install", "--no-build-isolation", "--no-deps", "-e", str(buggy_dir)],
                              env=ienv, timeout=self.timeout)
            if rc:
                env.notes.append("editable install failed; buggy/ put on sys.path with a .pth file")
                write_pth(venv, buggy_dir)
                env.install += "; project via .pth"
            else:
                env.install += "; project editable"
        else:
            write_pth(venv, buggy_dir)
            env.install += "; project via .pth (no setup.py)"
        return env


def write_pth(venv: Path, path: Path) -> None:
    for site in venv.glob("lib/python3*/site-packages"):
        (site / "realbugs_project.pth").write_text(str(path) + "\n")


def scm_version(gitdir: Path, commit: str) -> str:
    desc = git(gitdir, "describe", "--tags", "--abbrev=0", commit, check=False).strip()
    m = re.search(r"(\d+(?:\.\d+)+)", desc)
    return m[1] if m else "0.0.0"


def project_test_extras(gitdir: Path, commit: str) -> list[str]:
    names: list[str] = []
    for rel in ("test_requirements.txt", "requirements-test.txt", "requirements_test.txt",
                "requirements/test.txt"):
        data = git_file(gitdir, commit, rel)
        if data:
            names += [r.name for r in parse_requirements(decode_text(data)) if r.name]
    tox = git_file(gitdir, commit, "tox.ini")
    if tox:
        m = re.search(r"^\[testenv\]\s*$(.*?)(?=^\[)", decode_text(tox) + "\n[", re.M | re.S)
        if m:
            d = re.search(r"^deps\s*=(.*?)(?=^\S)", m[1] + "\nX", re.M | re.S)
            if d:
                for tok in d[1].split():
                    mm = re.match(r"^([A-Za-z][A-Za-z0-9._-]*)", tok)
                    if mm and not tok.startswith(("-", "{")):
                        names.append(norm_name(mm[1]))
    seen: dict[str, None] = {}
    for n in names:
        if n not in SKIP_EXTRAS:
            seen.setdefault(n, None)
    return list(seen)


# -------------------------------------------------------------------------------------- test runs

REPORTER = r'''
import json, os
_R = {}
def _put(nid, out):
    nid = nid.replace("::()", "")
    if _R.get(nid) in ("failed", "error"):
        return
    _R[nid] = out
def pytest_runtest_logreport(report):
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            _put(report.nodeid, "xpassed" if report.outcome == "passed" else "xfailed")
        else:
            _put(report.nodeid, report.outcome)
    elif report.outcome == "failed":
        _put(report.nodeid, "error")
    elif report.outcome == "skipped" and report.when == "setup":
        _put(report.nodeid, "skipped")
def pytest_collectreport(report):
    if report.outcome == "failed":
        _R["<collect>" + report.nodeid] = "error"
def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["REALBUGS_REPORT"], "w") as fh:
        json.dump({"exitstatus": int(exitstatus), "results": _R}, fh)
'''


def run_pytest(case_dir: Path, targets: list[str], run: Runner, label: str, timeout: float,
               extra_env: dict | None = None) -> dict:
    plugdir = case_dir / ".realbugs"
    plugdir.mkdir(exist_ok=True)
    (plugdir / "realbugs_reporter.py").write_text(REPORTER)
    report = plugdir / f"report-{label}.json"
    report.unlink(missing_ok=True)
    home = plugdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = VenvBuilder.pip_env()
    env.update(PYTHONPATH=str(plugdir), PYTHONDONTWRITEBYTECODE="1", REALBUGS_REPORT=str(report),
               HOME=str(home), PYTHONHASHSEED="0", **BASE_TEST_ENV)
    env.update(extra_env or {})
    env.pop("PYTEST_ADDOPTS", None)
    py = str(case_dir / "venv" / "bin" / "python")
    cmd = [py, "-m", "pytest", "-p", "realbugs_reporter", "-p", "no:cacheprovider", "-o", "addopts=",
           "-q", *targets]
    rc, out = run(cmd, cwd=case_dir / "buggy", env=env, timeout=timeout)
    data = json.loads(report.read_text()) if report.exists() else {"exitstatus": rc, "results": {}}
    data["rc"] = rc
    data["tail"] = "\n".join(out.strip().splitlines()[-15:])
    return data


def matches(nodeid: str, target: str) -> bool:
    return nodeid == target or nodeid.startswith(target + "[") or nodeid.startswith(target + "::")


def outcome_of(results: dict, target: str) -> tuple[str, list[str]]:
    """Aggregate outcome of a (possibly parametrised) target: 'failed' if any node failed/errored,
    'passed' if all passed, 'missing' when nothing ran (collection error)."""
    nodes = {k: v for k, v in results.items() if matches(k, target)}
    if not nodes:
        coll = [k for k, v in results.items() if k.startswith("<collect>")]
        return ("collect-error" if coll else "missing"), []
    vals = set(nodes.values())
    if vals & {"failed", "error", "xpassed"}:
        return "failed", sorted(k for k, v in nodes.items() if v in ("failed", "error", "xpassed"))
    if vals <= {"passed"}:
        return "passed", []
    return "skipped", []


class FixApplied:
    """Context manager: overwrite the changed non-test files of buggy/ with the fixed commit's version,
    then put the buggy versions back."""

    def __init__(self, gitdir: Path, bug: Bug, tree: Path, files: list[str]):
        self.gitdir, self.bug, self.tree, self.files = gitdir, bug, tree, files

    def _write(self, commit: str) -> None:
        for rel in self.files:
            data = git_file(self.gitdir, commit, rel)
            dest = self.tree / rel
            if data is None:
                dest.unlink(missing_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)

    def __enter__(self):
        self._write(self.bug.fixed)
        return self

    def __exit__(self, *exc):
        self._write(self.bug.buggy)


# ------------------------------------------------------------------------------------------- build


def extract_tree(gitdir: Path, commit: str, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    data = git(gitdir, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(dest, filter="tar")


def build_case(bug: Bug, args, vb: VenvBuilder) -> dict:
    t0 = time.monotonic()
    gitdir = mirror_gitdir(args.mirror_dir, bug.github_url)
    case_dir = args.out / bug.id
    case_dir.mkdir(parents=True, exist_ok=True)
    logfile = case_dir / "build.log"
    logfile.write_text(f"# {bug.id}\n")
    run = Runner(logfile)
    rec: dict = {
        "id": bug.id,
        "project": bug.project,
        "bugsinpy_number": bug.number,
        "repo_url": bug.github_url,
        "buggy_commit": bug.buggy,
        "fixed_commit": bug.fixed,
        "buggy_is_parent_of_fixed": bug.buggy in git(gitdir, "rev-parse", f"{bug.fixed}^@",
                                                    check=False).split(),
        "bugsinpy_python_version": bug.info.get("python_version"),
        "bugsinpy_test_files": bug.test_files,
    }
    fixed_paths = set(git(gitdir, "ls-tree", "-r", "--name-only", bug.fixed).splitlines())
    failing, commands = parse_run_test(bug.run_test, lambda p: p in fixed_paths)
    rec["bugsinpy_test_commands"] = commands
    rec["failing_tests"] = failing

    # --- trees and the fix diff
    changed = diff_files(gitdir, bug.buggy, bug.fixed)
    src = [c for c in changed if not c["test"]]
    test_side = sorted({c["file"] for c in changed if c["test"]} | set(bug.test_files))
    rec["fix_diff_stats"] = {c["file"]: {"added": c["added"], "deleted": c["deleted"]} for c in src}
    rec["test_files_from_fixed"] = test_side
    extract_tree(gitdir, bug.buggy, case_dir / "buggy")
    for rel in test_side:
        data = git_file(gitdir, bug.fixed, rel)
        dest = case_dir / "buggy" / rel
        if data is None:
            dest.unlink(missing_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    funcs = []
    for c in src:
        if c["file"].endswith(".py"):
            funcs += fixed_functions(gitdir, bug.buggy, bug.fixed, c["file"])
    rec["fixed_functions"] = funcs

    # --- environment
    env = vb.build(bug, gitdir, case_dir, run, args.force)
    rec["python_version"] = env.python
    rec["pytest_version"] = env.pytest
    rec["dropped_requirements"] = env.dropped
    rec["extra_requirements"] = env.extras
    rec["install"] = env.install
    rec["env_notes"] = env.notes
    rec["venv_build_seconds"] = env.seconds

    # --- reproduce
    files = sorted({t.split("::")[0] for t in failing} | set(bug.test_files))
    files = [f for f in files if (case_dir / "buggy" / f).exists()]
    tt = args.test_timeout
    xenv = TEST_ENV_OVERRIDES.get(bug.id, {})
    rec["test_env"] = dict(BASE_TEST_ENV, **xenv)
    r_bug = run_pytest(case_dir, failing, run, "buggy-failing", tt, xenv)
    r_bug_all = run_pytest(case_dir, files, run, "buggy-files", tt, xenv)
    with FixApplied(gitdir, bug, case_dir / "buggy", [c["file"] for c in src]):
        r_fix = run_pytest(case_dir, failing, run, "fixed-failing", tt, xenv)
        r_fix_all = run_pytest(case_dir, files, run, "fixed-files", tt, xenv)

    reasons = []
    failing_nodes: list[str] = []
    buggy_kinds = set()
    for t in failing:
        ob, nodes_b = outcome_of(r_bug["results"], t)
        of, _ = outcome_of(r_fix["results"], t)
        if ob not in ("failed", "collect-error"):
            reasons.append(f"{t}: {ob} on buggy")
        if of != "passed":
            reasons.append(f"{t}: {of} on fixed")
        buggy_kinds.add("collection error" if ob == "collect-error" else "test failure")
        if ob == "failed" and of == "passed":
            failing_nodes += nodes_b
        elif ob == "collect-error" and of == "passed":
            failing_nodes += sorted(k for k in r_fix["results"] if matches(k, t))
    if not failing:
        reasons.append("no test ids in run_test.sh")
    rec["failing_test_nodes"] = sorted(set(failing_nodes))
    rec["buggy_failure_kind"] = sorted(buggy_kinds)
    rec["reproduces"] = not reasons
    rec["reason"] = "; ".join(reasons) if reasons else "fails on buggy, passes on fixed"
    if reasons:
        rec["reason"] += " | buggy: " + r_bug["tail"].splitlines()[-1:][0] if r_bug["tail"] else ""
        rec["reason"] += " | fixed: " + r_fix["tail"].splitlines()[-1:][0] if r_fix["tail"] else ""

    regression = sorted(k for k, v in r_fix_all["results"].items()
                        if v == "passed" and not k.startswith("<collect>")
                        and not any(matches(k, t) for t in failing))
    rec["regression_tests"] = regression
    rec["regression_count"] = len(regression)
    buggy_all = r_bug_all["results"]
    rec["regression_not_passing_on_buggy"] = sorted(k for k in regression if buggy_all.get(k) != "passed")
    rec["fixed_file_run"] = {
        "outcomes": count_outcomes(r_fix_all["results"]),
        "exitstatus": r_fix_all.get("exitstatus"),
    }
    rec["buggy_file_run"] = {
        "outcomes": count_outcomes(buggy_all),
        "exitstatus": r_bug_all.get("exitstatus"),
    }
    rec["build_seconds"] = round(time.monotonic() - t0, 1)
    (case_dir / "case.json").write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec


def count_outcomes(results: dict) -> dict:
    out: dict[str, int] = {}
    for k, v in results.items():
        key = "collect-error" if k.startswith("<collect>") else v
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def write_cases(path: Path, records: list[dict]) -> None:
    existing = json.loads(path.read_text()) if path.exists() else []
    by_id = {r["id"]: r for r in existing}
    for r in records:
        by_id[r["id"]] = r
    ordered = sorted(by_id.values(), key=lambda r: (r["project"], r["bugsinpy_number"]))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(ordered, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(path)


def parse_only(items: list[str] | None) -> list[tuple[str, int]]:
    if not items:
        return list(DEFAULT_BUGS)
    out = []
    for it in items:
        project, _, num = it.rpartition(":")
        if not project:
            raise SystemExit(f"--only wants project:n, got {it!r}")
        for part in num.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                out += [(project, n) for n in range(int(lo), int(hi) + 1)]
            else:
                out.append((project, int(part)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror-dir", type=Path, default=Path("/work/.mirror"),
                    help="folder holding the bare git mirrors (<owner>+<name>/repo)")
    ap.add_argument("--bugsinpy", type=Path, default=None,
                    help="BugsInPy git dir (default: <mirror-dir>/soarsmu+BugsInPy/repo)")
    ap.add_argument("--bugsinpy-rev", default="HEAD")
    ap.add_argument("--out", type=Path, default=Path("/work/realbugs"))
    ap.add_argument("--only", nargs="*", metavar="PROJECT:N",
                    help="bugs to build, e.g. tqdm:1 youtube-dl:26-30 cookiecutter:1,2 (default: all)")
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="metadata file to update")
    ap.add_argument("--pyenv-versions", type=Path, default=Path.home() / ".pyenv" / "versions")
    ap.add_argument("--force", action="store_true", help="rebuild venvs even when one is there")
    ap.add_argument("--min-python", default=DEFAULT_MIN_PYTHON, metavar="X.Y",
                    help="only use interpreters >= X.Y (default %(default)s: the tool under test needs "
                         "3.8+); among them the one nearest BugsInPy's version is tried first")
    ap.add_argument("--pip-timeout", type=float, default=1200)
    ap.add_argument("--test-timeout", type=float, default=900)
    args = ap.parse_args(argv)
    try:
        args.min_python = parse_minor(args.min_python)
    except ValueError as exc:
        ap.error(f"--min-python: {exc}")
    args.mirror_dir = args.mirror_dir.resolve()
    args.bugsinpy = args.bugsinpy or args.mirror_dir / "soarsmu+BugsInPy" / "repo"
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=[logging.StreamHandler(sys.stderr),
                                  logging.FileHandler(args.out / "build.log")])
    vb = VenvBuilder(args.out, args.pyenv_versions, args.pip_timeout, args.min_python)
    bugsinpy_commit = git(args.bugsinpy, "rev-parse", args.bugsinpy_rev).strip()
    t_all = time.monotonic()
    failures = 0
    for project, number in parse_only(args.only):
        t0 = time.monotonic()
        log.info("%s-%d: building", project, number)
        try:
            bug = load_bug(args.bugsinpy, args.bugsinpy_rev, project, number)
            rec = build_case(bug, args, vb)
        except Exception as exc:  # keep going: record the failure
            failures += 1
            log.exception("%s-%d: build failed", project, number)
            rec = {"id": f"{project}-{number}", "project": project, "bugsinpy_number": number,
                   "reproduces": False, "reason": f"build failed: {exc}",
                   "build_seconds": round(time.monotonic() - t0, 1)}
        rec["bugsinpy_commit"] = bugsinpy_commit
        write_cases(args.cases, [rec])
        log.info("%s: reproduces=%s (%s) failing=%d regression=%s functions=%d %.0fs", rec["id"],
                 rec["reproduces"], rec["reason"], len(rec.get("failing_tests", [])),
                 rec.get("regression_count"), len(rec.get("fixed_functions", [])), rec["build_seconds"])
    log.info("done in %.0fs, %d build failures", time.monotonic() - t_all, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
