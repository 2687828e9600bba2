"""The in-sandbox half of the job protocol (sandbox/job.py is the host's half). Stdlib only, Python 3.8+.

Every program the project runs inside the sandbox (the pytest driver, the eval harness, the tracer, the
PyX executor, the failing-test probe) is a *job program*: source that defines ``main(data, channel)``.
The host ships it with this module as ``_semcoder_job.py`` and a job file holding the job's data and a
per-job key; ``serve(main)`` then:

1. reads and deletes the job file, and keeps the key only inside a keyed BLAKE2 state (C memory);
2. takes the process's stdout as the private result channel (a dup of fd 1, close-on-exec) and points
   fds 0 and 1 at /dev/null and stderr, so anything the code under test prints is diagnostics, never a
   result;
3. calls ``main``; every ``channel.send(value)`` writes one frame ``TAG seq mac json``, the MAC keyed by
   the job's key over the sequence number and the body; on return an ``end`` frame is written and the
   process leaves with ``os._exit`` at once, so no ``atexit`` hook or lingering thread of the code under
   test runs after the report.

The host accepts a channel made only of well-formed, correctly keyed frames in sequence, ended by one
``end`` frame with nothing after it. A frame twice, out of order, after ``end``, unkeyed or malformed
fails the whole job: the code under test can find the channel's fd (``/proc/self/fd``) and write to it,
but without the key what it writes only breaks the job, never passes it.

Everything the writer uses (the encoder, ``os.write``, the MAC), and everything ``serve`` uses to read the job
file and take the channel, is bound here, when this module is imported, before any untrusted code is: patching
``json``, ``builtins``, ``sys.stdout`` or ``os`` later changes nothing.

A warm sandbox (sandbox/job.py ``Preload``) imports this module, then calls ``preload`` to import the job's
environment (pytest, its plugins, third-party and stdlib modules) before the job exists: only ever from the
interpreter's environment, never from the job's files (its working dir does not exist yet), and only the code
of that environment runs before ``serve``, never the code under test. A deliberate attack on this process's memory can still find the keyed state (gc); that is
why a verdict is never this channel alone (agent/verdict.py: tamper checks, a static screen and an
independent confirmation run).
"""

import _blake2
import _json
import _signal
import marshal
import os
import sys

TAG = "@@semcoder-job"
JOB_FILE = ".semcoder-job"
MODULE = "_semcoder_job"
_MAC_BYTES = 16


class JobTimeout(BaseException):
    """A job's own time limit ran out (a BaseException: `except Exception` in user code cannot swallow it)."""


def _make_encoder():
    """Compact JSON of exact builtin values; TypeError for anything else (a str subclass could lie)."""
    encode_str = _json.encode_basestring_ascii
    int_repr, float_repr, str_join, sort = int.__repr__, float.__repr__, str.join, sorted
    kind = type
    inf = float("inf")

    def encode(value):
        t = kind(value)
        if t is str:
            return encode_str(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if t is int:
            return int_repr(value)
        if t is float:
            if value != value:
                return "NaN"
            if value == inf or value == -inf:
                return "Infinity" if value > 0 else "-Infinity"
            return float_repr(value)
        if t is list or t is tuple:
            return "[" + str_join(",", [encode(item) for item in value]) + "]"
        if t is dict:
            items = []
            for key in sort(value):
                if kind(key) is not str:
                    raise TypeError("job reports need str keys, not " + kind(key).__name__)
                items.append(encode_str(key) + ":" + encode(value[key]))
            return "{" + str_join(",", items) + "}"
        raise TypeError("a job report cannot hold a " + t.__name__)

    return encode


encode = _make_encoder()


def mac(keyed, seq, body):
    """The frame's MAC: `keyed` is a BLAKE2 state already keyed with the job's key."""
    state = keyed.copy()
    state.update(("%s %s" % (seq, body)).encode("ascii"))
    return state.hexdigest()


def new_key_state(key_hex, _blake2b=_blake2.blake2b, _fromhex=bytes.fromhex):
    return _blake2b(key=_fromhex(key_hex), digest_size=_MAC_BYTES)


class Channel:
    """The job's one result channel: frames on a private fd, MACed with the job's key."""

    def __init__(self, fd, key_hex):
        write, encode_, mac_ = os.write, encode, mac
        keyed = new_key_state(key_hex)
        state = {"seq": 0, "open": True}

        def put(line):
            view = memoryview(line.encode("ascii"))
            while view:
                view = view[write(fd, view):]

        def send(value):
            """One record (exact builtin JSON types); records arrive at the host in order."""
            if not state["open"]:
                raise RuntimeError("the job's channel is closed")
            body = encode_(value)
            seq = state["seq"]
            put("%s %d %s %s\n" % (TAG, seq, mac_(keyed, seq, body), body))
            state["seq"] = seq + 1

        def end():
            count = "%d" % state["seq"]
            put("%s end %s\n" % (TAG, mac_(keyed, "end", count)))
            state["open"] = False

        # Bound methods of a plain object would be reachable through its __dict__; closures are not replaced
        # by attribute assignment on the channel.
        self.send = send
        self._end = end


def time_limit(seconds, message=None):
    """Arms the job's one timer: JobTimeout(message) is raised in the main thread after `seconds` (0 disarms)."""

    def on_alarm(signum, frame):
        raise JobTimeout(message or "the job's time limit of %g s ran out" % seconds)

    _signal.signal(_signal.SIGALRM, on_alarm)
    _signal.setitimer(_signal.ITIMER_REAL, float(seconds))


def use_site_packages(extra=(), pth=True):
    """Puts the interpreter's site-packages on sys.path, as `site` would have (the sandbox runs Python with -S):
    a venv's own first (and the base's only if the venv includes system site-packages), each .pth file
    processed so editable installs import; then `extra` (semcoder's own venv, when that is the interpreter).
    `pth=False` only appends the directories (semcoder's own environment: its .pth files are not the project's)."""
    import site

    if not pth:
        for path in [*site.getsitepackages(), *extra]:
            if path not in sys.path and os.path.isdir(path):
                sys.path.append(path)
        return
    site.venv(None)  # a venv (pyvenv.cfg beside bin/): sets sys.prefix and site's PREFIXES, adds its site-packages
    for path in site.getsitepackages():  # PREFIXES: the venv's, the base's too if the venv includes them
        if os.path.isdir(path):
            site.addsitedir(path)
    for path in extra:
        if path not in sys.path and os.path.isdir(path):
            site.addsitedir(path)


def use_workspace(project_root):
    """The project's own modules import from this job's working dir (the candidate), never from the project on
    the host: paths that editable installs of the project put on sys.path, or in setuptools' editable finders,
    are moved from `project_root` to here; a `src/` layout's folder goes right after the working dir."""
    here = os.getcwd()
    root = (project_root or "").rstrip(os.sep)
    environment = [p.rstrip(os.sep) + os.sep for p in (sys.prefix, sys.base_prefix)]  # a .venv/ inside the project

    def moved(path):
        if root and isinstance(path, str) and (path == root or path.startswith(root + os.sep)) \
                and not any(path.startswith(p) for p in environment):
            return here + path[len(root):]
        return path

    sys.path[:] = [moved(p) for p in sys.path]
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict):
            mapping.update({key: moved(value) for key, value in mapping.items()})
    src = os.path.join(here, "src")
    if os.path.isdir(src) and src not in sys.path:
        sys.path.insert(1 if sys.path and sys.path[0] in ("", here) else 0, src)


# What read_job, open_channel and serve call, bound now: in a warm sandbox the environment's modules are imported
# after this module and before the job, and none of them can reach the job's key or channel through a patch.
_os_open, _os_read, _os_close, _os_fstat, _os_unlink = os.open, os.read, os.close, os.fstat, os.unlink
_os_dup, _os_dup2, _os_exit, _loads = os.dup, os.dup2, os._exit, marshal.loads
_RDONLY, _DEVNULL = os.O_RDONLY, os.devnull


PRELOADED = None  # what preload() did in this process: {"site": [paths, pth], "modules": [...], "failed": [...]}


def preload(spec, files=None, workdir=None):
    """A warm sandbox's preparation, before the job exists: the environment's site-packages as `use_site_packages`
    sets them up, then `spec["modules"]` imported in order. The job's working dir does not exist yet and is not on
    sys.path, so nothing of the job's files can be imported; a module that fails to import is left to the job
    (the job imports it itself, as a cold start would). A module of `spec["avoid"]` imported on the way (another
    module imports it) spoils the preload: RuntimeError, and the sandbox runs the job cold. Then the job program's
    own preparation, if it has one (`spec["prepare"]`, source defining prepare(data, files, workdir); `files`:
    the worker's previous job's files, `workdir`: where the job will run); one that fails prepares nothing."""
    global PRELOADED
    sys.dont_write_bytecode = True  # as the job programs have it
    site_paths, pth = list(spec.get("site_paths", [])), bool(spec.get("site_pth", True))
    use_site_packages(site_paths, pth)
    import importlib

    avoid = list(spec.get("avoid", []))
    done, failed = [], []
    for name in spec.get("modules", []):
        try:
            importlib.import_module(name)
            done.append(name)
        except BaseException:  # whatever an import does, the job meets again (as a cold start would)
            failed.append(name)
        _check_avoided(avoid, name)
    if spec.get("prepare"):
        namespace = {"__name__": "_semcoder_prepare"}
        try:
            exec(compile(spec["prepare"], "<preload>", "exec"), namespace)
            namespace["prepare"](spec.get("prepare_data"), files or {}, workdir or os.getcwd())
        except BaseException:
            pass
        _check_avoided(avoid, "the job program's preparation")
    PRELOADED = {"site": [site_paths, pth], "modules": done, "failed": failed}


def _check_avoided(avoid, what):
    spoiled = [other for other in avoid if other in sys.modules]
    if spoiled:
        raise RuntimeError("%s imported %s, which the job must import itself" % (what, spoiled[0]))


def read_job(path=JOB_FILE):
    """The job file's (data, key): read, then deleted, before anything untrusted runs."""
    fd = _os_open(path, _RDONLY)
    try:
        chunks, size = [], _os_fstat(fd).st_size
        while size > 0:
            chunk = _os_read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
    finally:
        _os_close(fd)
    parsed = _loads(b"".join(chunks))  # the host's own bytes; marshal is builtin and imports nothing
    _os_unlink(path)
    return parsed["data"], parsed["key"]


def open_channel(key_hex):
    """Takes fd 1 as the private channel; the code under test's stdout goes to stderr from now on."""
    sys.stdout.flush()
    fd = _os_dup(1)  # non-inheritable (PEP 446): subprocesses of the code under test do not get it
    _os_dup2(2, 1)
    null = _os_open(_DEVNULL, _RDONLY)
    _os_dup2(null, 0)
    _os_close(null)
    return Channel(fd, key_hex)


def serve(main):
    """Runs `main(data, channel)` as this job and ends the process; see the module docstring."""
    exit_, stdout, stderr = _os_exit, sys.stdout, sys.stderr
    data, key = read_job()
    channel = open_channel(key)
    del key
    try:
        main(data, channel)
    except BaseException:  # the job program failed: no end frame, the host reports stderr
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        exit_(1)
    for stream in (stdout, stderr):  # the streams as they were before main: diagnostics only
        try:
            stream.flush()
        except BaseException:
            pass
    channel._end()
    exit_(0)


def parse(text, key_hex):
    """The host's reading of a channel: (records, ended, problem); problem is '' for a well-formed channel.

    Shared with the host (sandbox/job.py) and with job programs that run children of their own, so the
    frame format has one reader.
    """
    import json

    keyed = new_key_state(key_hex)
    records = []
    ended = False
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines):
        if ended:
            return records, False, "the channel has data after the job's end (line %d)" % (number + 1)
        parts = line.split(" ", 3)
        if len(parts) < 3 or parts[0] != TAG:
            return records, False, "a malformed report on the channel (line %d): %r" % (number + 1, line[:80])
        if parts[1] == "end" and len(parts) == 3:
            if parts[2] != mac(keyed, "end", "%d" % len(records)):
                return records, False, "the job's end frame does not carry the job's key"
            ended = True
            continue
        if len(parts) != 4 or parts[1] != "%d" % len(records):
            return records, False, "a report out of sequence or repeated (line %d)" % (number + 1)
        if parts[2] != mac(keyed, parts[1], parts[3]):
            return records, False, "a report without the job's key (line %d)" % (number + 1)
        try:
            records.append(json.loads(parts[3]))
        except ValueError:
            return records, False, "a report that is not JSON (line %d)" % (number + 1)
    return records, ended, ""
