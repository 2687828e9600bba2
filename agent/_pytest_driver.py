"""The job program (sandbox/job.py) that tests one workspace: pytest plus a recorder plugin and tamper checks.

It runs inside the sandbox and imports nothing from this package. It sends one record: per-test outcomes,
the failing line of each failed test, per-test line coverage of the workspace's own files (the spectrum for
fault localization) and `tampered`, the reasons this run cannot be trusted.

The code under test runs in this process, so it can reach pytest's machinery. Before pytest runs, the
driver takes a snapshot of what a forged pass would have to change (pytest's runner and report classes,
`Function.runtest`, `json`, `builtins`, `sys.exit`, the stdout/stderr objects, the job runtime's module) and
compares after; it records each test's real outcome from the innermost wrapper of the call phase, beneath
any plugin's or conftest's hooks, and compares it with the report pytest produced; it notes `atexit`
registrations made from the workspace. Anything that differs is tampering. The job channel carries the
record (the runtime's key and `os._exit` make a late or printed report worthless); agent/verdict.py then
confirms a fix by an independent runner before it is called fixed.
"""

import os
import sys
from time import perf_counter as _clock

MESSAGE_CHARS = 2000
ROOT = os.path.realpath(os.getcwd()) + os.sep
sys.dont_write_bytecode = True


def _import_pytest(site_paths, pth):
    """pytest from the environment, never from the workspace (a `pytest.py` there would be the code under test). In a
    warm sandbox the environment's site-packages are set up already, and pytest may be imported already."""
    import _semcoder_job

    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) + os.sep != ROOT]
    try:
        preloaded = getattr(_semcoder_job, "PRELOADED", None)
        if not preloaded or preloaded["site"] != [list(site_paths), bool(pth)]:
            _semcoder_job.use_site_packages(site_paths, pth)
        import pytest
    finally:
        sys.path[:] = saved + [p for p in sys.path if p not in saved]
    return pytest


def _recorder_class(pytest):
    """The recorder plugin; built once pytest is imported, so its hook markers are pytest's own."""
    import _pytest.python
    import _pytest.unittest
    from _semcoder_job import time_limit

    # pytest's own item classes and their runtest as imported, before any conftest or test module ran.
    runtests = {cls: vars(cls)["runtest"] for cls in (_pytest.python.Function,
                                                      getattr(_pytest.unittest, "TestCaseFunction", None))
                if cls is not None and "runtest" in vars(cls)}
    skipped = (pytest.skip.Exception, pytest.xfail.Exception)

    class Recorder:
        """Per-test outcomes from pytest's reports, and the real outcome seen beneath every other hook."""

        def __init__(self):
            self.tests = {}
            self.collect_errors = []
            self.coverage = {}
            self.raw = {}  # nodeid -> what the test function itself did: passed / failed / skipped
            self.tampered = []

        def configure(self, data):
            """What the test loop needs of the job (set at the gate: a prestarted run learns it only there)."""
            self.test_timeout_s = float(data.get("test_timeout_s", 5))
            self.timeouts = data.get("test_timeouts") or {}  # per test id, from the baseline's durations
            self.want_coverage = data.get("coverage", True)

        @staticmethod
        def _line_tracer(lines):
            # Called for every call (global_) and every line of the workspace's code (local): each workspace file's
            # relative name is made once (a fresh slice per line event cost a third of the tracing).
            add, root, cut, names = lines.add, ROOT, len(ROOT), {}

            def local(frame, event, arg):
                if event == "line":
                    add((names[frame.f_code.co_filename], frame.f_lineno))
                return local

            def global_(frame, event, arg):
                filename = frame.f_code.co_filename
                if filename.startswith(root):
                    name = names.get(filename)
                    if name is None:
                        name = names[filename] = filename[cut:]
                    add((name, frame.f_lineno))
                    return local
                return None

            return global_

        def pytest_collection_finish(self, session):
            """Hooks from the workspace that decide outcomes (all conftests are loaded by now)."""
            self.collected_at = _clock()
            hook = session.config.pluginmanager.hook
            for name in ("pytest_pyfunc_call", "pytest_runtest_protocol"):
                for impl in getattr(hook, name).get_hookimpls():
                    if _from_workspace(impl.function):
                        self.tampered.append("a hook from the workspace implements %s (%s)" % (name, impl.plugin_name))
            impls = hook.pytest_runtest_call.get_hookimpls()  # call order is last to first
            wrappers = [i for i in impls if i.hookwrapper or getattr(i, "wrapper", False)]
            ours = [n for n, i in enumerate(wrappers) if i.plugin is self]
            for impl in wrappers[: ours[0] if ours else 0]:
                if _from_workspace(impl.function):
                    self.tampered.append("a hook from the workspace wraps the test call beneath the recorder (%s)"
                                         % impl.plugin_name)

        @pytest.hookimpl(hookwrapper=True, trylast=True)
        def pytest_runtest_call(self, item):
            """Innermost wrapper of the call phase: what the test function itself did, before any hook reads it."""
            own = runtests.get(type(item))
            if "runtest" in vars(item) or (own is not None and vars(type(item)).get("runtest") is not own):
                self.tampered.append("%s: its runtest was replaced" % item.nodeid)
            lines = set()
            self.coverage[item.nodeid] = lines
            previous = sys.gettrace()
            limit = float(self.timeouts.get(item.nodeid, self.test_timeout_s))
            time_limit(limit, "test exceeded %g s (infinite loop?)" % limit)
            if self.want_coverage:
                sys.settrace(self._line_tracer(lines))
            try:
                outcome = yield
            finally:
                sys.settrace(previous)
                time_limit(0)
            error = outcome.excinfo[1] if outcome.excinfo is not None else None
            if error is None:
                self.raw[item.nodeid] = "passed"
            elif isinstance(error, skipped):
                self.raw[item.nodeid] = "skipped"
            else:  # a JobTimeout (BaseException) too: pytest records it as this test's failure
                self.raw[item.nodeid] = "failed"

        @pytest.hookimpl(hookwrapper=True, tryfirst=True)
        def pytest_runtest_makereport(self, item, call):
            outcome = yield
            report = outcome.get_result()
            if report.when == "setup" and report.outcome != "passed":
                self._record(item, report, call, "error" if report.failed else "skipped")
            elif report.when == "call":
                self._record(item, report, call, report.outcome)

        def _record(self, item, report, call, outcome):
            entry = {"id": item.nodeid, "outcome": outcome, "message": "", "test_file": str(item.location[0]),
                     "test_line": None, "error_type": "", "duration_s": float(getattr(report, "duration", 0.0))}
            if call.excinfo is not None and outcome in ("failed", "error"):
                entry["message"] = str(report.longreprtext)[-MESSAGE_CHARS:]
                entry["error_type"] = call.excinfo.typename
                test_path = os.path.realpath(str(_path(item)))  # item.path: pytest 7+; fspath before
                for tb_entry in call.excinfo.traceback:
                    if os.path.realpath(str(_path(tb_entry))) == test_path:
                        entry["test_line"] = tb_entry.lineno + 1
            self.tests[item.nodeid] = entry

        def pytest_collectreport(self, report):
            if report.failed:
                self.collect_errors.append({"id": report.nodeid,
                                            "message": str(report.longreprtext)[-MESSAGE_CHARS:]})

        def cross_check(self):
            """A reported pass must be a pass of the test function itself."""
            for test_id, entry in self.tests.items():
                if entry["outcome"] != "passed":
                    continue
                raw = self.raw.get(test_id)
                if raw is None:
                    self.tampered.append("%s: reported passed but its test function never ran" % test_id)
                elif raw != "passed":
                    self.tampered.append("%s: the test function %s but its report says passed (a hook changed "
                                         "the outcome)" % (test_id, "failed" if raw == "failed" else "was skipped"))

    return Recorder


# What the run uses of its data before its tests run (pytest's configuration and collection): a run started ahead
# of its job (sandbox.job.Preload.prestart) goes on only for a job that has the same.
_BEFORE_TESTS = ("paths", "project_root", "site_paths", "plugin_autoload")


def _gate_class(pytest):
    class Gate:
        """Where the run starts to depend on its job: just before the test loop. In a cold sandbox the job is there
        already; a prestarted one ran pytest's configuration and collection ahead, on the previous job's files
        and data, and takes the job here if that gives what a cold run gives (sandbox/_job_child.py)."""

        def __init__(self, channel, data, recorder, watch):
            self.channel, self.data, self.recorder, self.watch = channel, data, recorder, watch
            self.job = None
            self.opened_at = None

        def open(self):
            if self.job is None:
                data = self.data
                self.job = self.channel.begin(lambda job: all(job.get(k) == data.get(k) for k in _BEFORE_TESTS),
                                              likely=data.get("changed", ()))
                self.opened_at = _clock()
                self.recorder.configure(self.job)
            return self.job

        @pytest.hookimpl(hookwrapper=True, tryfirst=True)
        def pytest_runtestloop(self, session):
            self.open()
            yield

    return Gate


def _imports():
    """What this run imported, for a warm sandbox to prepare the next run of the same workspace (sandbox.job.Preload):
    the modules from outside the workspace in import order (`modules`), those of them pytest imported through its
    assertion rewriter (`avoid`: imported ahead they would not be rewritten; nothing of their top-level package is
    in `modules`), the files pytest rewrote (`rewrite`: outside the workspace, by path, and in it: their rewritten
    code may be made ahead, agent/_pytest_preload.py), and the workspace's own source files
    that were imported as plain source (`compile`: their code objects may be compiled ahead)."""
    modules, avoid, own, rewritten_outside, rewritten_own = [], [], [], [], []
    for name, module in list(sys.modules.items()):
        if name in ("__main__", "_semcoder_job") or not isinstance(module, type(sys)):
            continue
        try:
            spec = module.__dict__.get("__spec__")
            origin = getattr(spec, "origin", None)
            paths = [origin] if isinstance(origin, str) and origin not in ("built-in", "frozen") else []
            paths += [p for p in (getattr(spec, "submodule_search_locations", None) or []) if isinstance(p, str)]
            loader = type(module.__dict__.get("__loader__")).__name__
        except Exception:  # a module object someone made by hand
            continue
        if origin in ("built-in", "frozen"):
            modules.append(name)
        elif not paths:
            continue  # made at run time: nothing to import by name
        elif any(os.path.realpath(p).startswith(ROOT) for p in paths):
            if isinstance(origin, str) and origin.endswith(".py") and loader == "SourceFileLoader":
                own.append(os.path.realpath(origin)[len(ROOT):])
            elif isinstance(origin, str) and origin.endswith(".py") and loader == "AssertionRewritingHook":
                rewritten_own.append(os.path.realpath(origin)[len(ROOT):])
        elif loader == "AssertionRewritingHook":
            avoid.append(name)
            if isinstance(origin, str) and origin.endswith(".py"):
                rewritten_outside.append(origin)
        else:
            modules.append(name)
    # A plugin's package imports its rewritten modules (pytest_mock/__init__.py imports .plugin): none of its
    # top-level package is imported ahead.
    rewritten = {name.split(".")[0] for name in avoid}
    modules = [name for name in modules if name.split(".")[0] not in rewritten]
    return {"modules": modules, "avoid": avoid, "compile": own,
            "rewrite": {"outside": rewritten_outside, "workspace": rewritten_own}}


def _path(obj):
    return getattr(obj, "path", None) or getattr(obj, "fspath", "")


def _from_workspace(function):
    code = getattr(function, "__code__", None)
    return code is not None and os.path.realpath(code.co_filename).startswith(ROOT)


def _snapshot(pytest):
    """The objects a forged pass would have to replace, by name."""
    import builtins
    import json

    import _pytest.main
    import _pytest.python
    import _pytest.runner

    # Report classes moved from _pytest.runner to _pytest.reports in pytest 3.x; an attribute that a given
    # pytest does not have is watched as missing (it must stay missing).
    reports = sys.modules.get("_pytest.reports") or _pytest.runner
    watched = {
        "_pytest.python.Function.runtest": (_pytest.python.Function, "runtest"),
        "_pytest.runner.call_and_report": (_pytest.runner, "call_and_report"),
        "_pytest.runner.runtestprotocol": (_pytest.runner, "runtestprotocol"),
        "_pytest.runner.CallInfo.from_call": (getattr(_pytest.runner, "CallInfo", _pytest.runner), "from_call"),
        "TestReport.from_item_and_call": (getattr(reports, "TestReport", reports), "from_item_and_call"),
        "TestReport.outcome": (getattr(reports, "TestReport", reports), "outcome"),
        "BaseReport.passed": (getattr(reports, "BaseReport", reports), "passed"),
        "BaseReport.failed": (getattr(reports, "BaseReport", reports), "failed"),
        "_pytest.main.Session.perform_collect": (_pytest.main.Session, "perform_collect"),
        "json.dumps": (json, "dumps"),
        "json.loads": (json, "loads"),
        "json.JSONEncoder.encode": (json.JSONEncoder, "encode"),
        "json.JSONEncoder.iterencode": (json.JSONEncoder, "iterencode"),
        "json._default_encoder": (json, "_default_encoder"),
        "sys.exit": (sys, "exit"),
        "sys.stdout": (sys, "stdout"),
        "sys.stderr": (sys, "stderr"),
        "os._exit": (os, "_exit"),
        "os.write": (os, "write"),
        "pytest.main": (pytest, "main"),
    }
    objects = {name: vars(owner).get(attr, _MISSING) if isinstance(owner, type) else getattr(owner, attr, _MISSING)
               for name, (owner, attr) in watched.items()}
    modules = {name: sys.modules.get(name) for name in ("pytest", "_pytest", "_pytest.python", "_pytest.runner",
                                                        "_pytest.main", "json", "builtins",
                                                        "_semcoder_job", "os", "sys", "atexit")}
    return watched, objects, modules, dict(vars(builtins))


_MISSING = object()


def _compare(snapshot):
    import builtins

    watched, objects, modules, builtin_names = snapshot
    found = []
    for name, (owner, attr) in watched.items():
        now = vars(owner).get(attr, _MISSING) if isinstance(owner, type) else getattr(owner, attr, _MISSING)
        if now is not objects[name]:
            found.append("%s was replaced" % name)
    for name, module in modules.items():
        if sys.modules.get(name) is not module:
            found.append("sys.modules[%r] was replaced" % name)
    current = vars(builtins)
    for name, value in builtin_names.items():
        if current.get(name, _MISSING) is not value:
            found.append("builtins.%s was replaced" % name)
    pytest_dir = os.path.dirname(os.path.dirname(sys.modules["_pytest"].__file__))  # the site-packages it came from
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("pytest", "_pytest") and module is not None:
            path = getattr(module, "__file__", None) or ""
            if path and not os.path.realpath(path).startswith(os.path.realpath(pytest_dir) + os.sep):
                found.append("module %s was loaded from %s, not from pytest's own install" % (name, path))
    return found


class _AtexitWatch:
    """Notes atexit registrations made from files whose change added atexit (the host says which). A hook never
    runs (the job ends with os._exit after its report) and could not reach the channel; but a patch that adds
    one is trying to, while the project's own hooks (tqdm registers one) are its business."""

    def __init__(self):
        import atexit

        self.callers = []
        self._atexit = atexit
        self._register = atexit.register

        def register(function, *args, **kwargs):
            self.callers.append(os.path.realpath(sys._getframe(1).f_code.co_filename))
            return self._register(function, *args, **kwargs)

        atexit.register = register
        self.count = atexit._ncallbacks()

    def close(self):
        self._atexit.register = self._register

    def found(self, changed):
        watched = {os.path.join(ROOT, path) for path in changed}
        return ["the patch registers an atexit hook (%s)" % caller[len(ROOT):] for caller in self.callers
                if caller in watched]


def main(data, channel):
    started = _clock()
    if not data.get("plugin_autoload", True):
        # semcoder's own environment stands in for a project that has none: its installed plugins (langsmith,
        # hypothesis, ...) are not the project's and cost seconds per run. A project's environment (--python, a
        # detected venv) loads its plugins as `pytest` would there.
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    pytest = _import_pytest(data.get("site_paths", []), data.get("plugin_autoload", True))
    imported = _clock()
    sys.path.insert(0, ROOT.rstrip(os.sep))  # as `python -m pytest` does: the project's modules import from its root
    from _semcoder_job import use_workspace

    use_workspace(data.get("project_root"))
    recorder = _recorder_class(pytest)()
    snapshot = _snapshot(pytest)
    watch = _AtexitWatch()
    gate = _gate_class(pytest)(channel, data, recorder, watch)
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:benchmark", "--rootdir", ".",
            *data.get("paths", [])]
    try:
        exit_code = pytest.main(args, plugins=[recorder, gate])
    finally:
        watch.close()
    ran = _clock()
    data = gate.open()  # the job's (pytest may have ended before its test loop: a usage or collection error)
    recorder.cross_check()
    tampered = recorder.tampered + _compare(snapshot) + watch.found(data.get("atexit_files", []))
    coverage = {test: sorted(lines) for test, lines in recorder.coverage.items()}
    record = {"exit_code": int(exit_code), "tests": list(recorder.tests.values()),
              "collect_errors": recorder.collect_errors, "coverage": coverage, "tampered": tampered}
    if data.get("report_imports"):
        record["imports"] = _imports()
    import _semcoder_job

    preloaded = getattr(_semcoder_job, "PRELOADED", None)  # a warm sandbox's: how many modules it had imported ahead
    record["preloaded"] = len(preloaded["modules"]) if preloaded else 0
    prestarted = getattr(_semcoder_job, "PRESTARTED", None)  # a prestarted sandbox's: files whose functions it swapped
    if prestarted is not None:
        record["prestarted"] = {"swapped": list(prestarted["swapped"]), "take_s": prestarted["take_s"]}
    rewrite = getattr(sys.modules.get("_pytest.assertion.rewrite"), "_rewrite_test", None)
    record["rewritten_ahead"] = getattr(getattr(rewrite, "__code__", None), "co_filename", "") == "<preload>"
    # Where the run's time went (benchmarks/candidate_test_time.py --phases): importing pytest, its configuration
    # and collection (the project's imports), running the tests (calls: the tests' own call phases).
    collected = getattr(recorder, "collected_at", ran)
    if prestarted is not None:  # configuration and collection ran before the job came
        started = imported = collected = min(gate.opened_at, ran)
    record["phases"] = {"import_s": imported - started, "collect_s": collected - imported, "run_s": ran - collected,
                        "calls_s": sum(entry["duration_s"] for entry in recorder.tests.values())}
    channel.send(record)
