"""The job program that confirms a fix: each test called directly, with no pytest plugin or conftest loaded.

A different path from the one that scored the candidate (agent/_pytest_driver.py): no pytest session, no
hooks, no conftest.py, no plugins; each test id is resolved to its function (a parametrized case from its
`parametrize` marks, a unittest case through unittest) and called under the job's timer. A test it cannot
run faithfully (fixtures other than tmp_path/monkeypatch, indirect parametrization, async, xfail) is
`unconfirmable`, and the host confirms those with a fresh pytest job instead; a test id it cannot find is
`missing`, never passed. One record per test.
"""

import os
import sys

ROOT = os.path.realpath(os.getcwd())
MESSAGE_CHARS = 1500
_BUILTIN_FIXTURES = ("tmp_path", "monkeypatch")


class Unconfirmable(Exception):
    pass


class Missing(Exception):
    pass


def _module_for(path, cache):
    """Imports a test file as pytest's default `prepend` mode does: by its package path from the first
    directory up that has no __init__.py."""
    if path in cache:
        return cache[path]
    import importlib

    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        raise Missing("no test file %s" % path)
    directory, name = os.path.split(full)
    parts = [name[:-3]]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = importlib.import_module(".".join(parts))
    cache[path] = module
    return module


def _marks(*owners):
    found = []
    for owner in owners:
        marks = getattr(owner, "pytestmark", [])
        found.extend(marks if isinstance(marks, list) else [marks])
    return found


def _param_id(value, argname, index):
    if isinstance(value, (str, int, float, bool, complex, type(None))):
        text = str(value)
        return text if text.isascii() else text.encode("unicode_escape").decode("ascii")
    return "%s%d" % (argname, index)


def _cases(function, owners):
    """Every (id, kwargs) of a test from its parametrize marks, as pytest names them."""
    import itertools

    layers = []
    for mark in _marks(function, *owners):
        if mark.name == "xfail":
            raise Unconfirmable("xfail mark")
        if mark.name == "usefixtures":
            raise Unconfirmable("usefixtures")
        if mark.name != "parametrize":
            continue
        if mark.kwargs.get("indirect"):
            raise Unconfirmable("indirect parametrization")
        names, values = mark.args[0], list(mark.args[1]) if len(mark.args) > 1 else list(mark.kwargs["argvalues"])
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        ids = mark.kwargs.get("ids")
        layer = []
        for index, value in enumerate(values):
            given_id = None
            if type(value).__name__ == "ParameterSet":
                given_id = value.id
                if any(getattr(m, "name", "") == "xfail" for m in value.marks):
                    raise Unconfirmable("xfail parameter")
                value = value.values
            else:
                value = (value,) if len(names) == 1 else tuple(value)
            if isinstance(ids, (list, tuple)) and index < len(ids) and ids[index] is not None:
                given_id = str(ids[index])
            elif callable(ids):
                raise Unconfirmable("ids computed by a function")
            case_id = given_id if given_id is not None else "-".join(
                _param_id(v, n, index) for n, v in zip(names, value))
            layer.append((case_id, dict(zip(names, value))))
        layers.append(layer)
    if not layers:
        return [("", {})]
    cases = []
    for ordered in (layers, layers[::-1]):  # stacked marks: accept the ids joined either way
        for combo in itertools.product(*ordered):
            cases.append(("-".join(c[0] for c in combo), {k: v for c in combo for k, v in c[1].items()}))
    return cases


def _fixtures(function, given):
    import inspect

    values, cleanups = {}, []
    for name, parameter in inspect.signature(function).parameters.items():
        if name in given or name == "self" or parameter.default is not inspect.Parameter.empty:
            continue
        if name == "tmp_path":
            import pathlib
            import tempfile

            values[name] = pathlib.Path(tempfile.mkdtemp(prefix="confirm-"))
        elif name == "monkeypatch":
            from _pytest.monkeypatch import MonkeyPatch  # pytest.MonkeyPatch only from pytest 6.2

            patcher = MonkeyPatch()
            values[name] = patcher
            cleanups.append(patcher.undo)
        else:
            raise Unconfirmable("needs fixture %r" % name)
    return values, cleanups


def _run_one(test_id, cache, timeout_s):
    import inspect

    from _semcoder_job import time_limit

    path, _, rest = test_id.partition("::")
    names = [name for name in rest.split("::") if name != "()"]  # old pytest's instance marker: Class::()::test
    leaf, _, param = names[-1].partition("[")
    param = param[:-1] if param.endswith("]") else param
    module = _module_for(path, cache)
    owner, owners = module, [module]
    for name in names[:-1]:
        owner = getattr(owner, name, None)
        if owner is None:
            raise Missing("no %s in %s" % (name, path))
        owners.append(owner)
    function = getattr(owner, leaf, None)
    if function is None:
        raise Missing("no test %s" % test_id)
    if inspect.iscoroutinefunction(function):
        raise Unconfirmable("async test")
    import unittest

    if isinstance(owner, type) and issubclass(owner, unittest.TestCase):
        result = unittest.TestResult()
        time_limit(timeout_s)
        try:
            owner(leaf).run(result)
        finally:
            time_limit(0)
        if result.skipped or result.expectedFailures:
            raise Unconfirmable("skipped or expected failure under unittest")
        problems = result.failures + result.errors + [(c, "unexpected success") for c in result.unexpectedSuccesses]
        if problems:
            raise AssertionError(problems[0][1])
        return
    matches = [kwargs for case_id, kwargs in _cases(function, owners) if case_id == param]
    if not matches:
        raise Unconfirmable("parameter id %r not reproduced" % param)
    instance = owner() if isinstance(owner, type) else None
    target = getattr(instance, leaf) if instance is not None else function
    fixtures, cleanups = _fixtures(function, matches[0])
    setup = getattr(instance, "setup_method", None) if instance is not None else getattr(module, "setup_function", None)
    teardown = getattr(instance, "teardown_method", None) if instance is not None else getattr(module, "teardown_function", None)
    time_limit(timeout_s)
    try:
        if setup is not None:
            setup(function)
        try:
            target(**matches[0], **fixtures)
        finally:
            if teardown is not None:
                teardown(function)
            for cleanup in cleanups:
                cleanup()
    finally:
        time_limit(0)


def main(data, channel):
    from _semcoder_job import JobTimeout

    os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    sys.dont_write_bytecode = True
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from _semcoder_job import use_site_packages

    # The project's environment (pytest, its dependencies); .pth files too where it is the project's own.
    use_site_packages(data.get("site_paths", []), data.get("project_env", True))
    from _semcoder_job import use_workspace

    use_workspace(data.get("project_root"))
    cache = {}
    for test_id in data["tests"]:
        outcome, message = "passed", ""
        try:
            _run_one(test_id, cache, float(data.get("test_timeouts", {}).get(test_id, data.get("test_timeout_s", 5))))
        except Unconfirmable as exc:
            outcome, message = "unconfirmable", str(exc)
        except Missing as exc:
            outcome, message = "missing", str(exc)
        except JobTimeout:
            outcome, message = "failed", "timed out"
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: a test that raises them did not pass
            outcome, message = "failed", ("%s: %s" % (type(exc).__name__, exc))[:MESSAGE_CHARS]
        channel.send({"id": test_id, "outcome": outcome, "message": message})
