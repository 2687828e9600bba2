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
   the job's key over the sequence number and the body (``channel.send_json(text)``: a body the program
   encoded itself, one line, which the host gets as text, ``RawJSON``); on return an ``end`` frame is written and the
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
of that environment runs before ``serve``, never the code under test. A prestarted job (``prestarted_serve``,
below) runs the program before its job exists: the job, its key and its data come only at the program's gate,
to a process in which nothing else runs. A deliberate attack on this process's memory can still find the keyed
state (gc); that is why a verdict is never this channel alone (agent/verdict.py: tamper checks, a static screen
and an independent confirmation run).
"""

import _blake2
import _json
import _signal
import marshal
import os
import sys
from time import perf_counter as _clock

TAG = "@@semcoder-job"
RAW = "="  # a frame body that starts with it is a send_json record: JSON text the host reads as text (RawJSON)
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
        write, encode_, mac_, kind = os.write, encode, mac, type
        keyed = new_key_state(key_hex)
        state = {"seq": 0, "open": True, "held": None}  # held: the frames not written yet (hold()), else None

        def write_all(line):
            view = memoryview(line.encode("ascii"))
            while view:
                view = view[write(fd, view):]

        def put(line):
            held = state["held"]
            if held is None:
                write_all(line)
            else:
                held.append(line)

        def hold():
            """From now on frames wait in this process until flush() (or the end): one write for many records.

            What waits is lost if the process dies: a program that holds must be able to say again what it had
            not flushed (the tracer's host runs those rows again, unheld)."""
            if state["held"] is None:
                state["held"] = []

        def flush():
            held = state["held"]
            if held:
                state["held"] = []
                write_all("".join(held))

        def send(value):
            """One record (exact builtin JSON types); records arrive at the host in order."""
            if not state["open"]:
                raise RuntimeError("the job's channel is closed")
            body = encode_(value)
            seq = state["seq"]
            put("%s %d %s %s\n" % (TAG, seq, mac_(keyed, seq, body), body))
            state["seq"] = seq + 1

        def send_json(body):
            """One record the program encoded itself (JSON text on one line): framed as it is, not encoded again.

            For records built by a C encoder (a trace's thousands of events): the host gets the text (RawJSON) and
            decodes or parses it once, as it needs. It is the program's text like any record."""
            if not state["open"]:
                raise RuntimeError("the job's channel is closed")
            if kind(body) is not str or "\n" in body or "\r" in body:
                raise ValueError("send_json needs one line of JSON text")
            body = RAW + body
            seq = state["seq"]
            put("%s %d %s %s\n" % (TAG, seq, mac_(keyed, seq, body), body))
            state["seq"] = seq + 1

        def end():
            flush()
            state["held"] = None
            count = "%d" % state["seq"]
            put("%s end %s\n" % (TAG, mac_(keyed, "end", count)))
            state["open"] = False

        # Bound methods of a plain object would be reachable through its __dict__; closures are not replaced
        # by attribute assignment on the channel.
        self.send = send
        self.send_json = send_json
        self.hold = hold
        self.flush = flush
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
    sets them up (unless `spec["site"]` is false: a program on the standard library alone), then `spec["modules"]`
    imported in order. The job's working dir does not exist yet and is not on sys.path, so nothing of the job's
    files can be imported; a module that fails to import is left to the job (the job imports it itself, as a cold
    start would). A module of `spec["avoid"]` imported on the way (another module imports it) spoils the preload:
    RuntimeError, and the sandbox runs the job cold. Then the job program's own preparation, if it has one
    (`spec["prepare"]`, source defining prepare(data, files, workdir); `files`: the worker's previous job's files,
    `workdir`: where the job will run); one that fails prepares nothing."""
    global PRELOADED
    sys.dont_write_bytecode = True  # as the job programs have it
    site_paths, pth = list(spec.get("site_paths", [])), bool(spec.get("site_pth", True))
    if spec.get("site", True):
        use_site_packages(site_paths, pth)
    avoid = list(spec.get("avoid", []))
    done, failed = [], []
    for name in spec.get("modules", []):
        try:
            __import__(name)  # importlib.import_module's import, without importing importlib (and warnings)
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
    """Runs `main(data, channel)` as this job and ends the process; see the module docstring. `channel.begin(same)`
    returns the job's data: at once here, after the job came in a prestarted child (`_serve_prestarted`)."""
    exit_, stdout, stderr = _os_exit, sys.stdout, sys.stderr
    data, key = read_job()
    channel = open_channel(key)
    del key
    channel.begin = lambda same=None, likely=(): data
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


# ---------------------------------------------------------------- prestarted jobs (sandbox/job.py Preload.prestart)
#
# A warm sandbox may start a job program before its job exists: in the job's working dir, on the files and with the
# data of the previous job of the same kind (one that ran to its end), so that what the program does before it
# needs its own job (pytest's configuration and collection: the project's imports) is done by the time the job
# comes. The program calls `channel.begin(same)` where its work starts to depend on the job. There the child
# waits for the job and takes it only if running on from here gives what a cold start on the job's files gives:
#
# - the same program, argv and set of files; data that `same(data)` accepts (what the program used so far);
# - every file that differs was not read before the job, or is a module imported from it (once, by the import
#   system, as plain source) whose new source differs only inside function bodies (not their docstrings,
#   signatures, decorators: `_shape`), and no function whose body changed ran before the job (a profiler hook
#   records every code object of the working dir that ran). Those functions then get the new code objects
#   (`function.__code__`: the same objects keep their identity, wherever they were bound), and so do those whose
#   lines only moved;
# - no other thread, and no other tracer took the hook over.
#
# Anything else: the child declines and the sandbox runs the job on a cold child. What stays of the start: line
# numbers that code which ran before the job recorded of itself (a warning's or log record's line at import time)
# are those of the previous file where lines moved. The job's key only exists after the job comes; what ran
# before it is the job's own module-level code (equal by the rule above) and nothing of the previous job but
# the bodies of functions that never ran.

PRESTARTED = None  # in a job that ran on from a prestart: {"swapped": [files whose function code was replaced]}
_CO_OPTIMIZED = 0x1  # a function's code (not a module's or a class body's)


def prestarted_serve(hooks):
    """The `serve` of a child that runs the program ahead of its job: the sandbox puts it in place of `serve` before
    the program's first line (which binds it); `hooks`, the server's side of the go, stay in this closure. It
    serves once, like `serve` (whose job file is gone after it)."""
    state = [hooks]

    def serve_ahead(main):
        taken, state[0] = state[0], None
        if taken is None:
            raise RuntimeError("the job was served already")
        _serve_prestarted(main, taken)

    return serve_ahead


def _serve_prestarted(main, hooks):
    """`serve` for a child that runs the program ahead of its job (never returns)."""
    exit_, stdout, stderr, channel_type = _os_exit, sys.stdout, sys.stderr, Channel
    await_job, commit, decline = hooks["await_job"], hooks["commit"], hooks["decline"]
    data, watch = hooks["data"], hooks["watch"]
    sys.stdout.flush()
    fd = _os_dup(1)  # as open_channel does, at the same point; the key comes with the job
    _os_dup2(2, 1)
    null = _os_open(_DEVNULL, _RDONLY)
    _os_dup2(null, 0)
    _os_close(null)
    state = {}

    def begin(same=None, likely=()):
        if "channel" not in state:
            job_data, key, swapped, took = _take_job(await_job, commit, decline, hooks, watch, data, same, likely)
            state["channel"], state["data"] = channel_type(fd, key), job_data
            global PRESTARTED
            PRESTARTED = {"swapped": swapped, "take_s": took}
        return state["data"]

    class LateChannel:
        def __init__(self):
            self.begin = begin

            def send(value):
                begin()
                state["channel"].send(value)

            def send_json(body):
                begin()
                state["channel"].send_json(body)

            def hold():
                begin()
                state["channel"].hold()

            def flush():
                begin()
                state["channel"].flush()

            self.send = send
            self.send_json = send_json
            self.hold = hold
            self.flush = flush

    try:
        main(data, LateChannel())
        begin()  # a program that reported nothing still ends its job's channel
    except BaseException:
        if "channel" not in state:
            decline("the program failed before its job came")
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        exit_(1)
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    state["channel"]._end()
    exit_(0)


def _take_job(await_job, commit, decline, hooks, watch, data, same, likely):
    """At the program's gate: the job, checked against what ran before it; declines (never returns) or commits the
    job's changed files, swaps the changed functions' code and returns (data, key, swapped files, seconds taken).
    `likely`: files the job will probably change, read while it is not there yet.

    Nothing else may run in this process's name while the job comes (it carries the key): a thread or another
    process of this uid started before the gate makes the child refuse the job before it is sent."""
    watch.stop()
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        await_job(refuse="threads were started before the job")
    if _other_processes():
        await_job(refuse="processes were started before the job")
    if watch.disturbed:
        await_job(refuse=watch.disturbed)
    read = {name: _read_source(os.path.join(watch.root, name), hooks["files"][name])
            for name in likely if name in hooks["files"] and name.endswith(".py")}
    job = await_job()
    came = _clock()
    reason, writes, plan = _check_job(job, hooks, watch, data, same, read)
    if reason:
        decline(reason)
    commit(job, writes)
    lines = sys.modules.get("linecache")
    if lines is not None:
        for name in writes:
            getattr(lines, "cache", {}).pop(os.path.join(watch.root, name), None)
    _swap(plan, watch.called)
    parsed = _loads(job["files"][JOB_FILE])  # never written to disk: read from the job as it came
    return parsed["data"], parsed["key"], sorted({old.co_filename[len(watch.root):] for old, _ in plan}), \
        _clock() - came


def _other_processes():
    """Whether a process other than this one runs with this process's uid (in the sandbox's pid namespace: one
    that this program started, or a daemon it left)."""
    uid, me, found = "%d" % os.getuid(), "%d" % os.getpid(), False
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            with open("/proc/%s/status" % pid) as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        found = found or line.split()[1] == uid
                        break
        except OSError:
            continue  # gone meanwhile
    return found


def _check_job(job, hooks, watch, data, same, read):
    before, files = hooks["files"], job["files"]
    if (job["code"], job["program"], list(job["argv"])) != (hooks["code"], hooks["program"], list(hooks["argv"])):
        return "another program", None, None
    if set(files) != set(before) | {JOB_FILE} or (job.get("links") or {}) != hooks["links"]:
        return "another set of files", None, None
    job_data = _loads(files[JOB_FILE])["data"]
    if not (same(job_data) if same is not None else job_data == data):
        return "data the program already used differs", None, None
    writes, plan = {}, []
    for name in sorted(files):
        if name == JOB_FILE or files[name] == before[name]:
            continue
        writes[name] = files[name]
        path = os.path.join(watch.root, name)
        codes, opened = watch.executed.get(path, []), watch.opened.get(path, 0)
        module = next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path), None)
        if not codes:
            if opened or module is not None:
                return "%s was read before the job" % name, None, None
            continue
        loader = type(getattr(module, "__loader__", None)).__name__
        # Read by its import, and maybe by linecache (a warning's source line): that cache is dropped at the gate.
        lines = sys.modules.get("linecache")
        cached = 1 if lines is not None and path in getattr(lines, "cache", {}) else 0
        if len(codes) != 1 or not 1 <= opened <= 1 + cached or loader != "SourceFileLoader":
            return "%s was read before the job other than by one plain import (%d runs, %d opens, %s)" % (
                name, len(codes), opened, loader), None, None
        old = read.get(name) or _read_source(path, before[name])
        swaps = _swap_plan(path, old, _read_source(path, files[name]), codes[0], watch.called)
        if isinstance(swaps, str):
            return swaps, None, None
        plan += swaps
    return "", writes, plan


class _Watch:
    """What ran and what was read before the job, under the working dir `root`: code objects run (a profiler hook),
    files opened and module code executed (an audit hook, inert after the gate: audit hooks cannot be removed).
    Started by the sandbox before the program's first line."""

    def __init__(self, root):
        self.root, self.called, self.opened, self.executed, self.disturbed = root, set(), {}, {}, ""
        on = self._on = [True]
        opened, executed, join, getcwd, normpath = self.opened, self.executed, os.path.join, os.getcwd, os.path.normpath
        code_type = type(_make_encoder.__code__)

        def audit(event, args):
            if not on[0]:
                return
            if event == "open" and args and isinstance(args[0], str):
                path = normpath(args[0] if args[0].startswith("/") else join(getcwd(), args[0]))
                if path.startswith(root):
                    opened[path] = opened.get(path, 0) + 1
            elif event == "exec" and args and type(args[0]) is code_type and args[0].co_filename.startswith(root):
                executed.setdefault(args[0].co_filename, []).append(args[0])

        sys.addaudithook(audit)
        add = self.called.add
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:  # 3.12+: each code object reported once, then its event is disabled
            self._tool = next((t for t in (4, 3, 5, 2) if monitoring.get_tool(t) is None), None)
            if self._tool is None:
                self.disturbed = "no free monitoring tool id"
                return
            disable = monitoring.DISABLE

            def started(code, offset):
                if code.co_filename.startswith(root):
                    add(code)
                return disable

            monitoring.use_tool_id(self._tool, "semcoder-prestart")
            monitoring.register_callback(self._tool, monitoring.events.PY_START, started)
            monitoring.set_events(self._tool, monitoring.events.PY_START)
        else:
            self._tool = None

            def trace(frame, event, arg):
                code = frame.f_code
                if code.co_filename.startswith(root):
                    add(code)

            self._trace = trace
            sys.settrace(trace)

    def stop(self):
        self._on[0] = False
        if self._tool is not None:
            monitoring = sys.monitoring
            monitoring.set_events(self._tool, 0)
            monitoring.register_callback(self._tool, monitoring.events.PY_START, None)
            monitoring.free_tool_id(self._tool)
        elif not self.disturbed:
            if sys.gettrace() is not self._trace:
                self.disturbed = "another tracer took over before the job"
            sys.settrace(None)


def _read_source(path, source):
    """(its shape, its code, the warnings compiling it gives) or None where it does not parse."""
    import ast
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tree = ast.parse(source, path)
            code = compile(tree, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return None
    return _shape(tree), code, [(w.category, str(w.message)) for w in caught]


def _swap_plan(path, old, new, old_code, called):
    """[(old code, new code)] for the functions of one module (`old`, `new`: _read_source's), or why the new
    source cannot replace the old one."""
    name = os.path.basename(path)
    if old is None or new is None:
        return "%s does not parse" % name
    (old_shape, _, old_warnings), (new_shape, new_code, new_warnings) = old, new
    if old_warnings != new_warnings:  # a cold start would have had the new ones when it imported the file
        return "compiling %s warns otherwise" % name
    if old_shape != new_shape:
        return "%s changed outside function bodies" % name
    pairs = []
    if not _pair(old_code, new_code, pairs):
        return "%s: its functions do not pair" % name
    plan = []
    for old, new in pairs:
        if old.co_freevars != new.co_freevars:
            return "%s: %s uses other free variables" % (name, old.co_name)
        if old in called and _unlined(old) != _unlined(new):
            return "%s: %s changed and ran before the job" % (name, old.co_name)
        plan.append((old, new))
    return plan


def _shape(node, ast=None):
    """An AST with function bodies left out (their docstrings kept) and without positions."""
    if ast is None:
        import ast
    if isinstance(node, list):
        return tuple(_shape(item, ast) for item in node)
    if not isinstance(node, ast.AST):
        return type(node).__name__, node
    fields = []
    for field, value in ast.iter_fields(node):
        if field == "body" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = value[0] if value else None
            docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                and isinstance(first.value.value, str)
            value = value[:1] if docstring else []
        elif field == "body" and isinstance(node, ast.Lambda):
            value = None
        fields.append(_shape(value, ast))
    return type(node).__name__, tuple(fields)


def _pair(old, new, pairs):
    """Pairs the function code objects defined by a module's (or class body's) code with the new ones, in order."""
    code_type = type(old)
    olds = [c for c in old.co_consts if type(c) is code_type]
    news = [c for c in new.co_consts if type(c) is code_type]
    if len(olds) != len(news):
        return False
    for a, b in zip(olds, news):
        if a.co_name != b.co_name or (a.co_flags & _CO_OPTIMIZED) != (b.co_flags & _CO_OPTIMIZED):
            return False
        if a.co_flags & _CO_OPTIMIZED:
            pairs.append((a, b))
        elif not _pair(a, b, pairs):
            return False
        elif sys.version_info >= (3, 13) and a.co_firstlineno != b.co_firstlineno:
            return False  # a class records its first line (__firstlineno__)
    return True


def _unlined(code):
    """The code object without its positions (what ran is the same code where only lines moved)."""
    consts = tuple(_unlined(c) if type(c) is type(code) else c for c in code.co_consts)
    table = "co_linetable" if sys.version_info >= (3, 10) else "co_lnotab"
    return code.replace(co_firstlineno=1, co_consts=consts, **{table: b""})


def _swap(plan, called):
    """Gives every function made from an old code object its new one. The functions are found where a module
    binds them (its globals, its classes, what they wrap); a code object referred to from anywhere else (its
    reference count says so) has its functions found by a search of the whole heap."""
    if not plan:
        return
    function = type(_swap)
    holders = {id(old): [] for old, _ in plan}
    for found in _bound_functions(plan):
        if id(found.__code__) in holders and found not in holders[id(found.__code__)]:
            holders[id(found.__code__)].append(found)
    ran = {id(code) for code in called}
    # References an old code object has besides its functions: getrefcount's argument, `old`, its plan entry, its
    # module's (or class body's) constants, and `called` if it ran.
    search = [old for old, _ in plan if sys.getrefcount(old) != 4 + len(holders[id(old)]) + (id(old) in ran)]
    for old, new in plan:
        for found in holders[id(old)]:
            found.__code__ = new
    if search:
        import gc

        new_of = {id(old): new for old, new in plan}
        for holder in gc.get_referrers(*search):
            if type(holder) is function and id(holder.__code__) in new_of:
                holder.__code__ = new_of[id(holder.__code__)]


def _bound_functions(plan):
    """Functions bound in the modules of the plan's files: in their globals and their classes (methods, static
    and class methods, properties), and what those wrap (__wrapped__)."""
    files = {old.co_filename for old, _ in plan}
    function, seen, found = type(_swap), set(), []
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) not in files:
            continue
        stack = list(vars(module).values())
        while stack:
            value = stack.pop()
            if id(value) in seen:
                continue
            seen.add(id(value))
            kind = type(value)
            if kind is function:
                found.append(value)
                stack.append(_own_attribute(value, "__wrapped__"))
            elif kind is staticmethod or kind is classmethod:
                stack.append(value.__func__)
            elif kind is property:
                stack += [value.fget, value.fset, value.fdel]
            elif isinstance(value, type) and value.__dict__.get("__module__") == module.__name__:
                stack += list(value.__dict__.values())
            else:  # functools.wraps on another callable (lru_cache): never its __getattr__ (a mock makes new ones)
                stack.append(_own_attribute(value, "__wrapped__"))
    return found


def _own_attribute(value, name):
    try:
        return object.__getattribute__(value, "__dict__").get(name)
    except Exception:
        return None


class RawJSON(str):
    """A record sent with ``channel.send_json``, as the JSON text the program wrote: its reader decodes it (json.loads)
    or parses it; nothing has checked that it is JSON."""

    __slots__ = ()


def parse(text, key_hex):
    """The host's reading of a channel: (records, ended, problem); problem is '' for a well-formed channel.

    Shared with the host (sandbox/job.py) and with job programs that run children of their own, so the
    frame format has one reader (FrameReader reads it as it comes, with the same rule: _frame).
    """
    keyed = new_key_state(key_hex)
    records = []
    ended = False
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines):
        if ended:
            return records, False, "the channel has data after the job's end (line %d)" % (number + 1)
        kind, value = _frame(line, keyed, len(records), number + 1)
        if kind == "record":
            records.append(value)
        elif kind == "end":
            ended = True
        else:
            return records, False, value
    return records, ended, ""


def _frame(line, keyed, count, number):
    """Line `number` of the channel when `count` records came before it: ("record", the record), ("end", None), or
    ("problem", why)."""
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[0] != TAG:
        return "problem", "a malformed report on the channel (line %d): %r" % (number, line[:80])
    if parts[1] == "end" and len(parts) == 3:
        if parts[2] != mac(keyed, "end", "%d" % count):
            return "problem", "the job's end frame does not carry the job's key"
        return "end", None
    if len(parts) != 4 or parts[1] != "%d" % count:
        return "problem", "a report out of sequence or repeated (line %d)" % number
    if parts[2] != mac(keyed, parts[1], parts[3]):
        return "problem", "a report without the job's key (line %d)" % number
    if parts[3][:1] == RAW:
        return "record", RawJSON(parts[3][1:])
    import json

    try:
        return "record", json.loads(parts[3])
    except ValueError:
        return "problem", "a report that is not JSON (line %d)" % number


class FrameReader:
    """parse, as the channel's bytes come in: each record, verified as parse verifies it, goes to
    `on_record(index, record)` in order while the job still runs. The first line that is not a frame of the job's
    (or the end) stops it. It only tells early what parse, on the whole output, then judges: a caller that used a
    record before must still find it among parse's records."""

    def __init__(self, key_hex, on_record):
        self._keyed, self._on_record = new_key_state(key_hex), on_record
        self._count, self._tail, self._open = 0, b"", True

    def feed(self, chunk):
        if not self._open:
            return
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            try:
                kind, value = _frame(line.decode("ascii"), self._keyed, self._count, 0)
            except UnicodeDecodeError:  # frames are ASCII: not one
                kind = "problem"
            if kind != "record":
                self._open = False
                return
            self._on_record(self._count, value)
            self._count += 1
