"""The program the sandbox runs to test one workspace: pytest plus a recorder plugin.

It runs as ``__main__`` inside the sandbox, so it imports nothing from this package. It prints one
JSON object after a marker line on stdout: per-test outcomes, the failing line of each failed test,
and per-test line coverage of the workspace's own files (the spectrum for fault localization).
"""

import json
import os
import signal
import sys

# Installed plugins cost seconds per run (langsmith, hypothesis, ...); a project that needs one names it
# in its own pytest config (addopts = -p anyio), which still loads it.
os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

CONFIG = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

try:
    import pytest
except ImportError:
    # The sandbox starts the base interpreter with -S (no site). Its site-packages, and the host's own (a venv's,
    # named in CONFIG), are readable there all the same; putting them on the path grants nothing new, it only
    # lets the tests import pytest.
    import site

    for path in [*site.getsitepackages(), *CONFIG.get("site_paths", [])]:
        if path not in sys.path and os.path.isdir(path):
            sys.path.append(path)
    import pytest

sys.dont_write_bytecode = True
MARKER = "@@SEMCODER-TEST-RESULT@@"
ROOT = os.path.realpath(os.getcwd()) + os.sep
sys.path.insert(0, os.getcwd())  # as `python -m pytest` does: the project's modules import from its root
MESSAGE_CHARS = 2000


class _TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _TestTimeout(f"test exceeded {CONFIG.get('test_timeout_s', 5)} s (infinite loop?)")


class Recorder:
    def __init__(self):
        self.tests = {}
        self.collect_errors = []
        self.coverage = {}

    def _line_tracer(self, lines):
        def local(frame, event, arg):
            if event == "line":
                lines.add((frame.f_code.co_filename[len(ROOT):], frame.f_lineno))
            return local

        def global_(frame, event, arg):
            if frame.f_code.co_filename.startswith(ROOT):
                lines.add((frame.f_code.co_filename[len(ROOT):], frame.f_lineno))
                return local
            return None

        return global_

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        lines = set()
        self.coverage[item.nodeid] = lines
        previous = sys.gettrace()
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, float(CONFIG.get("test_timeout_s", 5)))
        if CONFIG.get("coverage", True):
            sys.settrace(self._line_tracer(lines))
        try:
            yield
        finally:
            sys.settrace(previous)
            signal.setitimer(signal.ITIMER_REAL, 0)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "setup" and report.outcome != "passed":
            self._record(item, report, call, "error" if report.failed else "skipped")
        elif report.when == "call":
            self._record(item, report, call, report.outcome)

    def _record(self, item, report, call, outcome):
        entry = {"id": item.nodeid, "outcome": outcome, "message": "", "test_file": str(item.location[0]),
                 "test_line": None, "error_type": ""}
        if call.excinfo is not None and outcome in ("failed", "error"):
            entry["message"] = str(report.longreprtext)[-MESSAGE_CHARS:]
            entry["error_type"] = call.excinfo.typename
            test_path = os.path.realpath(str(item.path))
            for tb_entry in call.excinfo.traceback:
                if os.path.realpath(str(tb_entry.path)) == test_path:
                    entry["test_line"] = tb_entry.lineno + 1
        self.tests[item.nodeid] = entry

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append({"id": report.nodeid, "message": str(report.longreprtext)[-MESSAGE_CHARS:]})


def main():
    recorder = Recorder()
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:benchmark", "--rootdir", ".", *CONFIG.get("paths", [])]
    exit_code = pytest.main(args, plugins=[recorder])
    coverage = {test: sorted(lines) for test, lines in recorder.coverage.items()}
    result = {"exit_code": int(exit_code), "tests": list(recorder.tests.values()),
              "collect_errors": recorder.collect_errors, "coverage": coverage}
    sys.stdout.write("\n" + MARKER + "\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


main()
