"""What a warm sandbox prepares for the pytest driver after importing the environment (sandbox.job.Preload.prepare).

Runs inside the sandbox, in a child that will run the next test job, before that job exists; stdlib and the
environment's pytest only, Python 3.8+. pytest rewrites the asserts of the test files, the conftests and the
plugins' modules as it imports them: parse, rewrite, compile, each run again (it cannot write its .pyc cache
there). Here the rewritten code objects of the files the original's run rewrote are made ahead, by pytest's own
`rewrite_asserts`, and `_pytest.assertion.rewrite._rewrite_test` returns one only for a byte-identical file at
the same path, when the run's configuration leaves the assertion pass hook off (the only setting rewriting reads
from it here); anything else is rewritten as usual. Only pytest versions whose `_rewrite_test(fn, config)` is the
read-parse-rewrite-compile it is in pytest 5 to 9 are served, and only if the code made here equals what pytest's
own function makes for one of the files.
"""

import ast
import os


class _Config:
    """A configuration that answers only what rewriting may ask without changing its output."""

    def getini(self, name):
        if name == "enable_assertion_pass_hook":
            return False
        raise LookupError(name)


def _rewritten(rewrite, source, path):
    tree = ast.parse(source, filename=path)
    rewrite.rewrite_asserts(tree, source, path, _Config())
    return compile(tree, path, "exec", dont_inherit=True)


def prepare(data, files, workdir):
    try:
        from _pytest.assertion import rewrite
    except Exception:
        return
    original = getattr(rewrite, "_rewrite_test", None)
    code = getattr(original, "__code__", None)
    if code is None or code.co_varnames[:code.co_argcount] != ("fn", "config"):
        return  # an older pytest (3.x: _rewrite_test(config, fn)): left as it is
    if not _same_as_pytest(rewrite, original):
        return
    sources = []
    for path in data.get("outside", []):
        if _has_pyc(rewrite, path):
            continue  # pytest reads its own cache of it (a stale one means pytest rewrites it, as it would)
        try:
            with open(path, "rb") as handle:
                sources.append((path, handle.read()))
        except OSError:
            continue
    sources += [(os.path.join(workdir, name), files[name]) for name in data.get("workspace", []) if name in files]
    import warnings

    cache = {}
    for path, source in sources:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                made = _rewritten(rewrite, source, path)
            except Exception:  # it asked the configuration something else, or the file does not parse: pytest's job
                continue
        if not caught:  # a file whose rewriting warns is left to pytest, so that the warning comes as it would
            cache[path] = (source, made)
    if not cache:
        return
    stat = os.stat

    def _rewrite_test(fn, config):
        entry = cache.get(str(fn))
        if entry is not None and _pass_hook_off(config):
            with open(str(fn), "rb") as handle:
                if handle.read() == entry[0]:
                    return stat(str(fn)), entry[1]
        return original(fn, config)

    rewrite._rewrite_test = _rewrite_test


_CHECK = b"def test(x=[1]):\n    assert x == [2], 'message'\n    assert not x and len(x) > 3\n"


def _same_as_pytest(rewrite, original):
    """Whether pytest's own _rewrite_test makes, for a file, the code made here (this pytest's body is the one
    copied here, and its configuration asks nothing else)."""
    from pathlib import Path

    path = f"/tmp/.semcoder-rewrite-check-{os.getpid()}.py"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _CHECK)
        finally:
            os.close(fd)
        try:
            return original(Path(path), _Config())[1] == _rewritten(rewrite, _CHECK, path)
        finally:
            os.unlink(path)
    except Exception:
        return False


def _has_pyc(rewrite, path):
    """Whether pytest wrote its rewritten .pyc of an installed file (where it could: site-packages it may write)."""
    try:
        from pathlib import Path

        source = Path(path)
        folder = rewrite.get_cache_dir(source) if hasattr(rewrite, "get_cache_dir") else source.parent / "__pycache__"
        return (folder / (source.name[:-3] + rewrite.PYC_TAIL)).is_file()
    except Exception:
        return False


def _pass_hook_off(config):
    try:
        return not config.getini("enable_assertion_pass_hook")
    except Exception:
        return False
