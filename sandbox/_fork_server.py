"""The fork server that runs INSIDE the sandbox, started as ``python -I -S -c LAUNCH CONFIG`` (sandbox/_worker.py: the
launch imports this file as a module, so that a cold start loads its bytecode instead of compiling it, and calls main).

Stdlib only and never imported by the package: the supervisor starts it under bubblewrap and
speaks a length-prefixed marshal protocol over its stdin/stdout. It keeps two children forked
ahead of their jobs (each waiting in its own job cgroup, warmed up, still root); a job goes to the
older one, which drops to its slot's dedicated uid, sets the job's rlimits and runs the program as
``__main__`` in a fresh private working dir. The server keeps the evidence (wait status, CPU,
which limit fired, OOM kills) and sends it back; the supervisor turns evidence into a status.

Spawners: a pool's cold children are forked by a per-slot spawner that lives in the slot's job cgroups, so that no
child has to move into them (a v1 cgroup move waits for an RCU grace period); see ``_Spawner``.

Warm children: a job may carry a ``warm`` spec (sandbox/job.py ``Preload``). After such a job, the children
forked ahead are *preloaded* for the next job with the same spec, environment and limits: each drops to its
slot's uid and takes the job's limits first (a slot's uid is never the uid of the job running meanwhile, so
that job cannot signal or slow the child that runs the next one), imports the job runtime, compiles the
previous job's listed files (a code object is used only for a byte-identical file), then imports the
environment's modules (the runtime's ``preload``), with stdio on /dev/null and no working dir. A job with
that spec then starts in a process that has them; any other job, or a preload that failed, died or hung,
gets a cold child, and a spec whose preload failed is not tried again.

Prestarted children: when a job's spec allows it (``Preload.prestart``), no job was waiting behind it, and it ran
to its end, one waiting child is given the free working dir and runs the job's program ahead of the next job, on
that job's files and data, up to the program's gate (the job runtime's ``prestarted_serve``). The next job goes to
it there; it takes the job only where that gives what a cold start gives, else it declines and the job runs on a
cold child, as if it had come first. The result says which way a job ran (``warm``).
"""

import _signal as signal  # the `signal` module would import enum, which costs milliseconds
import gc
import marshal
import os
import resource
import select
import struct
import sys
import time

_HEADER = struct.Struct("!I")
_READ_CHUNK = 65536
_SETUP_FAILED = 125
_DECLINED = 123  # a prestarted child that could not take its job (the server runs it on a cold child)
_PIPE_BYTES = 1 << 20  # a prestarted child's output pipes: what it prints before its job waits there
_KILL_GRACE_S = 5.0
_PRELOAD_CPU_S = 60  # CPU seconds a preload may use (its RLIMIT_CPU); the job's own budget starts at go
_PRELOAD_PATIENCE_S = 30.0  # how long after its fork a warm child may still be preloading when its job comes
# What a warm child was prepared with, besides the spec: a job that differs in any of these gets a cold child.
_WARM_JOB_KEYS = ("env", "locale", "cpu_time", "memory", "processes", "file_size")


def _write_msg(fd, obj):
    data = marshal.dumps(obj)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_msg(fd):
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if body is None else marshal.loads(body)


# ---------------------------------------------------------------- cgroups (v1), written as root


# Cgroup files by plain fds: open() adds an fstat, an ioctl and two lseeks to each, and these are read and written on
# every job's critical path.
def _cg_write(directory, name, value):
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _cg_read(directory, name):
    fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _cgroup_dir(config, key, slot):
    """Two job cgroups per controller, used in turn: the next child waits in one while a job runs."""
    return config[key] and f"{config[key]}/job{slot}"


def _oom_kills(config, slot):
    if not config["cg_memory"]:
        return 0
    for line in _cg_read(_cgroup_dir(config, "cg_memory", slot), "memory.oom_control").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def _set_memory_limit(directory, limit):
    # memsw (memory+swap) must never be below memory, so the order depends on the direction.
    has_memsw = os.path.exists(os.path.join(directory, "memory.memsw.limit_in_bytes"))
    current = int(_cg_read(directory, "memory.limit_in_bytes"))
    names = ["memory.limit_in_bytes"] + (["memory.memsw.limit_in_bytes"] if has_memsw else [])
    for name in names if limit < current else reversed(names):
        _cg_write(directory, name, limit)


def _prepare_cgroups(config, job, slot):
    memory_set = config.setdefault("memory_set", {})
    if config["cg_memory"] and memory_set.get(slot) != job["memory"]:
        _set_memory_limit(_cgroup_dir(config, "cg_memory", slot), job["memory"])
        memory_set[slot] = job["memory"]
    if config["cg_pids"]:
        # The slot's spawner (root, idle while a job runs) is one process of these cgroups too.
        spawner = config["spawners"].get(slot)
        limit = job["processes"] + (spawner is not None)
        pids_set = config.setdefault("pids_set", {})
        if pids_set.get(slot) != limit:  # only this server writes it
            _cg_write(_cgroup_dir(config, "cg_pids", slot), "pids.max", limit)
            pids_set[slot] = limit


def _join_cgroups(config, slot):
    for key in ("cg_memory", "cg_pids"):
        if config[key]:
            _cg_write(_cgroup_dir(config, key, slot), "cgroup.procs", 0)


# ---------------------------------------------------------------- the job child


def _slot_uid(config, slot):
    """Each slot has its own dedicated uid: a running job never shares its uid with the child waiting in the other."""
    uids = config.get("uids")
    return uids[slot] if uids else config["uid"]


def _cpu_seconds(seconds):
    return max(1, int(-(-seconds // 1)))


def _set_rlimits(config, job, slot, preloading=False):
    """The job's rlimits. A warm child takes them before its preload, with the preload's own CPU budget (the
    hard limit leaves room for the job's, which `_start_cpu_budget` sets at go)."""
    cpu = _cpu_seconds(job["cpu_time"])
    limits = (_PRELOAD_CPU_S, cpu + _PRELOAD_CPU_S + 1) if preloading else (cpu, cpu + 1)
    resource.setrlimit(resource.RLIMIT_CPU, limits)
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_size"], job["file_size"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not config["cg_memory"]:
        resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
    if not config["cg_pids"] and _slot_uid(config, slot) >= 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (job["processes"], job["processes"]))


# Bound before any preload: what a preloaded child calls at go must not be what a module of the environment
# replaced on the way (the job's CPU limit depends on it).
_getrusage, _getrlimit, _setrlimit = resource.getrusage, resource.getrlimit, resource.setrlimit


def _start_cpu_budget(job):
    """At go, in a preloaded child: RLIMIT_CPU counts the process's CPU since its fork, so the job's budget is
    what it has used so far plus the job's own."""
    usage = _getrusage(resource.RUSAGE_SELF)
    hard = _getrlimit(resource.RLIMIT_CPU)[1]
    soft = _cpu_seconds(usage.ru_utime + usage.ru_stime + job["cpu_time"])
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard - 1)
    _setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))


def _drop_privileges(config, slot):
    uid = _slot_uid(config, slot)
    if uid < 0:
        os.setpgid(0, 0)
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _write_files(workdir, files):
    for name, content in files.items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)


def _write_links(workdir, links):
    """The request's tree around its files: symlinks into the read-only tree, or the tree's own relative links
    (sandbox/_tree.py). Made as the job's uid; nothing here follows them, and _wipe unlinks them."""
    for name, target in links.items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)


def _fresh_stdio():
    import io

    def text(fd, mode, errors):
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, encoding="utf-8", errors=errors, line_buffering=False)

    stdin = text(0, "r", "surrogateescape")
    stdout = text(1, "w", "surrogateescape")
    stderr = text(2, "w", "backslashreplace")
    stderr.reconfigure(line_buffering=True)
    _keep_alive.extend([sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__])
    sys.stdin = sys.__stdin__ = stdin
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = stderr


_keep_alive = []


def _exit_code_of(exc):
    # CPython's handle_system_exit: None -> 0, int -> itself, anything else is printed -> 1.
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:  # noqa: SIM105 - contextlib would cost milliseconds of start-up here
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _run_program(code, path, argv):
    import builtins

    main = type(sys)("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__cached__ = None
    # This server's frames stay beneath the program's: under a module name of their own (the launch's),
    # inspect.getmodule (called per frame by inspect.stack(), which test suites and pytest-mock use) finds their file
    # in its cache instead of scanning every module in sys.modules for each of them.
    sys.modules["__main__"] = main
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    ahead = _MAIN_CODE
    try:
        same = ahead is not None and ahead[0] == path and ahead[1] == code
        exec(ahead[2] if same else compile(code, path, "exec"), main.__dict__)
    except SystemExit as exc:
        return _exit_code_of(exc)
    except BaseException:
        kind, value, traceback = sys.exc_info()
        traceback = traceback.tb_next if traceback else None  # hide this frame, as `python file.py` would
        sys.excepthook(kind, value.with_traceback(traceback), traceback)
        return 1
    return 0


def _finalize(exit_code):
    """What interpreter shutdown would do: join threads, run atexit, flush (120 if flushing fails)."""
    import atexit

    threading = sys.modules.get("threading")
    try:
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            exit_code = exit_code or 120
    return exit_code


_WARM_UP = "def _f(xs):\n    return sorted({x: str(x) for x in xs}.items())\n_f(range(50))\n"


def _warm_up():
    """Touch what every program touches, so copy-on-write faults happen before the clock starts."""
    exec(compile(_WARM_UP, "<warm-up>", "exec"), {"__builtins__": __builtins__})
    _fresh_stdio()


def _read_job(job_fd):
    size = os.fstat(job_fd).st_size
    return marshal.loads(os.pread(job_fd, size, 0))


def _stdin_memfd(data):
    fd = os.memfd_create("stdin")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _prepare_child(config, fds, slot, warm, joined=False):
    """Before the job exists: join its job cgroups (unless it was born in them, see _Spawner), take the pipes, warm up. A cold child stays root, so that a
    running job (the other slot's uid) cannot signal the child that will run the next one; a warm child keeps
    the pipes aside (its preload writes to /dev/null) and drops to its own slot's uid before preloading."""
    if not joined:
        _join_cgroups(config, slot)
    if warm is None:
        os.dup2(fds["stdout"], 1)
        os.dup2(fds["stderr"], 2)
        keep = {fds["go"], fds["job"], fds["ready"]}
    else:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keep = {fds["go"], fds["job"], fds["ready"], fds["stdout"], fds["stderr"], fds["warm"], fds["code"]}
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    _warm_up()


def _read_locale(job):
    if job.get("locale"):  # as at start-up: LC_CTYPE from the environment (the locale encoding follows)
        import _locale

        try:  # noqa: SIM105 (contextlib is an import the fork server does not pay for)
            _locale.setlocale(_locale.LC_CTYPE, "")
        except _locale.Error:
            pass  # an unknown locale: Python's own start-up ignores it too


def _preload(config, fds, slot, warm, files, shared, main=None):
    """A warm child before its job exists: the limits and uid of the job that set the spec, its environment,
    the job runtime, then the code cache and the environment's modules (see the module docstring)."""
    job, spec = warm["job"], warm["spec"]
    _set_rlimits(config, job, slot, preloading=True)
    _drop_privileges(config, slot)
    workdir = os.path.join(config["scratch"], "work")  # where the job will run; it does not exist yet
    os.environ.clear()
    os.environ.update(job["env"], HOME=workdir, TMPDIR=workdir)
    _read_locale(job)
    os.chdir("/")
    # What the job's process will look like, as far as it can before the job exists: its argv and __main__ (this
    # server's module keeps a name of its own, see _run_program).
    sys.argv = [os.path.join(workdir, "main.py")]
    placeholder = type(sys)("__main__")
    placeholder.__file__ = sys.argv[0]
    sys.modules["__main__"] = placeholder
    # importlib.util's own functions, from the import system's frozen modules (always loaded): importing importlib.util
    # would import contextlib, collections and functools, 4 ms of every warm child's CPU.
    import _frozen_importlib
    import _frozen_importlib_external

    path = os.path.join(workdir, spec["file"])
    location = _frozen_importlib_external.spec_from_file_location(spec["module"], path)
    module = _frozen_importlib.module_from_spec(location)
    sys.modules[spec["module"]] = module
    exec(_runtime_code(spec, workdir) or compile(spec["source"], path, "exec", dont_inherit=True), module.__dict__)
    cache = _precompile(workdir, spec["compile"], files, shared, fds["code"], main)
    os.close(fds["code"])  # before any module of the environment runs
    if cache:
        _install_code_cache(cache)
    getattr(module, spec["call"])(spec["data"], files, workdir)
    for stream in (sys.stdout, sys.stderr):  # what the preload printed goes to /dev/null, now
        try:  # noqa: SIM105 (contextlib is an import the fork server does not pay for)
            stream.flush()
        except BaseException:
            pass
    os.write(fds["warm"], b"1")
    if not spec.get("prestart"):
        os.close(fds["warm"])


_RUNTIME_CODE = {}  # (source, path) -> the job runtime's code object, compiled by this server once


def _runtime_code(spec, workdir):
    """The job runtime a warm child imports first, compiled once in this server before the fork, so that no child
    compiles it again (5 ms of CPU each, per job on a busy pool). Its source is the host's own runtime (the spec is
    the supervisor's, never the job's); None if compiling it warns or fails: the child then compiles it itself."""
    key = (spec["source"], os.path.join(workdir, spec["file"]))
    if key not in _RUNTIME_CODE:
        _RUNTIME_CODE.clear()  # one runtime at a time: a new one replaces it
        _RUNTIME_CODE[key] = _compiled_quietly(key[0], key[1], dont_inherit=True)
    return _RUNTIME_CODE[key]


_SHARE_AFTER = 8  # a child that had to compile more files than this shares its code objects with the next ones


def _precompile(workdir, names, files, shared, share_fd, main):
    """Code objects of the previous job's files, by path, and of its program (`main`: its name and source, see
    _MAIN_CODE): pure compilation, nothing runs. `shared` is what an earlier child compiled (the files and program it
    compiled from, marshalled code objects): those still byte-identical are reused, the rest compiled here, and if
    that was the program or many files, written to `share_fd` for the server to hand on (a program compiled anew
    costs each warm child milliseconds of CPU, 3 ms for the eval harness; loading it from marshal, 0.04 ms). A file
    whose compilation warns is left out, so that its warnings (SyntaxWarning, DeprecationWarning) come when the job
    imports it."""
    global _MAIN_CODE
    reused, skipped, main_code = {}, set(), None
    if shared is not None:
        compiled_from, main_from, blob = shared
        try:
            loaded = marshal.loads(blob)
            skipped = {name for name in loaded["skipped"] if files.get(name) == compiled_from.get(name)}
            reused = {name: code for name, code in loaded["codes"].items()
                      if files.get(name) == compiled_from.get(name)}
            main_code = loaded["main"] if main is not None and main == main_from else None
        except Exception:  # nothing to reuse: compile them all here
            reused, skipped, main_code = {}, set(), None
    codes, fresh = {}, 0
    for name in names:
        data = files.get(name)
        if data is None or name in skipped:
            continue
        if name in reused:
            codes[name] = reused[name]
            continue
        fresh += 1
        code = _compiled_quietly(data, os.path.join(workdir, name), dont_inherit=True)
        if code is None:
            skipped.add(name)
        else:
            codes[name] = code
    fresh_main = main is not None and main_code is None
    if fresh_main:  # as _run_program would compile it: the same path, the same flags
        main_code = _compiled_quietly(main[1], os.path.join(workdir, main[0]), dont_inherit=False)
    if fresh > _SHARE_AFTER or (fresh_main and main_code is not None):
        view = memoryview(marshal.dumps({"codes": codes, "skipped": sorted(skipped), "main": main_code}))
        while view:
            view = view[os.write(share_fd, view):]
    if main_code is not None:
        _MAIN_CODE = (os.path.join(workdir, main[0]), main[1], main_code, not fresh_main)
    return {os.path.join(workdir, name): (files[name], code) for name, code in codes.items()}


# (path, source, code object, whether an earlier child compiled it): the program compiled ahead by a warm child
# (_run_program uses it)
_MAIN_CODE = None


def _compiled_quietly(source, path, dont_inherit):
    """compile(), or None where it fails or warns: then the job compiles it itself, and its errors and warnings
    (SyntaxWarning, DeprecationWarning) come in the job, as in a cold start."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = compile(source, path, "exec", dont_inherit=dont_inherit)
        except Exception:
            return None
    return None if caught else code


def _install_code_cache(cache):
    """Source files imported with a byte-identical source get the code object compiled ahead (what compiling
    them again would give: the same bytes, path and flags); any other source is compiled as usual."""
    import _frozen_importlib_external  # importlib._bootstrap_external, without importing importlib

    loader = _frozen_importlib_external.SourceLoader
    compile_source = loader.source_to_code

    def source_to_code(self, data, path, *, _optimize=-1):
        entry = cache.get(path)
        if entry is not None and _optimize == -1 and entry[0] == data:
            return entry[1]
        return compile_source(self, data, path, _optimize=_optimize)

    loader.source_to_code = source_to_code


def _start_job(config, fds, slot, warm):
    """After the go byte: the job's rlimits, environment, files and stdin."""
    job = _read_job(fds["job"])
    os.close(fds["job"])
    if warm is None:
        _drop_privileges(config, slot)
        _set_rlimits(config, job, slot)
    else:  # already its uid, with the job's limits (they are part of the spec); the CPU budget starts now
        _start_cpu_budget(job)
        os.dup2(fds["stdout"], 1)
        os.dup2(fds["stderr"], 2)
        os.close(fds["stdout"])
        os.close(fds["stderr"])
    os.dup2(_stdin_memfd(job["stdin"]), 0)
    if warm is not None:
        _fresh_stdio()
    os.environ.clear()
    os.environ.update(job["env"], HOME=job["workdir"], TMPDIR=job["workdir"])
    _read_locale(job)
    os.chdir(job["workdir"])
    _write_files(job["workdir"], job["files"])
    _write_links(job["workdir"], job.get("links") or {})
    _write_files(job["workdir"], {job["program"]: job["code"].encode("utf-8", "surrogatepass")})
    os.write(fds["ready"], b"1")
    os.close(fds["ready"])
    return job


def _child(config, fds, slot, warm, files, shared, prestart, joined=False, main=None):
    """Runs in the pre-forked child; never returns. `main`: the previous job's (program, code) a warm child compiles
    ahead."""
    try:
        _prepare_child(config, fds, slot, warm, joined)
    except BaseException as exc:
        _setup_failed(exc)
    if warm is not None:
        try:
            _preload(config, fds, slot, warm, files, shared, main)
        except BaseException:
            os._exit(_SETUP_FAILED)  # the server sees it die and runs the job on a cold child
    signal_byte = os.read(fds["go"], 1)
    if signal_byte == b"w" and prestart is not None:
        try:
            _prestart(config, fds, warm, prestart)
        finally:
            os._exit(_SETUP_FAILED)
    if signal_byte != b"1":
        os._exit(0)  # the server is shutting down
    os.close(fds["go"])
    try:
        job = _start_job(config, fds, slot, warm)
    except BaseException as exc:
        _setup_failed(exc)
    exit_code = 1
    try:
        path = os.path.join(job["workdir"], job["program"])
        exit_code = _finalize(_run_program(job["code"], path, job["argv"]))
    finally:
        os._exit(exit_code)


def _prestart(config, fds, warm, prestart):
    """A warm child runs the previous job's program in the working dir on that job's files and data, before its
    own job exists (the job runtime's _serve_prestarted says how the job is then taken or declined). Its output
    goes where the job's goes: a cold start would print the same."""
    workdir = os.path.join(config["scratch"], "work")
    os.chdir(workdir)
    job_file = warm["spec"]["prestart"]["job_file"]
    files = {name: data for name, data in prestart["files"].items() if name != job_file}
    data = marshal.loads(prestart["files"][job_file])["data"]  # that job's data; its key is not used
    _write_files(workdir, files)
    _write_links(workdir, prestart["links"] or {})
    _write_files(workdir, {prestart["program"]: prestart["code"].encode("utf-8", "surrogatepass")})
    os.dup2(fds["stdout"], 1)
    os.dup2(fds["stderr"], 2)
    os.close(fds["stdout"])
    os.close(fds["stderr"])
    _fresh_stdio()

    def await_job(refuse=None):
        if refuse is not None:  # before the job is sent: the server runs it on a cold child
            os.write(fds["warm"], b"x" + refuse.encode("utf-8", "replace")[:400])
            os._exit(_DECLINED)
        os.write(fds["warm"], b"g")  # at the gate
        os.close(fds["warm"])
        if os.read(fds["go"], 1) != b"1":
            os._exit(0)  # the server is shutting down
        os.close(fds["go"])
        job = _read_job(fds["job"])
        os.close(fds["job"])
        return job

    def commit(job, writes):
        _start_cpu_budget(job)
        _write_files(workdir, writes)
        os.write(fds["ready"], b"1")
        os.close(fds["ready"])

    def decline(reason):
        os.write(fds["ready"], b"d" + reason.encode("utf-8", "replace")[:400])
        os._exit(_DECLINED)

    runtime = sys.modules[warm["spec"]["module"]]
    runtime.serve = runtime.prestarted_serve({
        "data": data, "files": files, "links": prestart["links"] or {}, "code": prestart["code"],
        "program": prestart["program"],
        "argv": prestart["argv"], "await_job": await_job, "commit": commit, "decline": decline,
        "watch": runtime._Watch(os.path.realpath(workdir) + os.sep)})
    path = os.path.join(workdir, prestart["program"])
    os._exit(_finalize(_run_program(prestart["code"], path, prestart["argv"])))


def _setup_failed(exc):
    try:
        os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
    finally:
        os._exit(_SETUP_FAILED)


# ---------------------------------------------------------------- supervising one job


def _exit_code(wait_status):
    """os.waitstatus_to_exitcode (3.9+): the exit code, or -N for a death by signal N."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _pidfd_open(pid):
    """os.pidfd_open (3.9+); on an older interpreter (a project's Python 3.8) the same syscall through libc."""
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(pid)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(434, pid, 0)  # SYS_pidfd_open on x86_64 and aarch64
    if fd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    return fd


def _collect(pidfd, streams, deadline, cap, forward=None):
    """Reads stdout/stderr until the child exits, the wall deadline passes or output exceeds cap. `forward`: (the fd
    to the supervisor, the stdout pipe) for a job that streams: each piece of its stdout also goes to the supervisor
    as it comes, a `{"chunk": bytes}` message ahead of the result (which still holds all of it)."""
    poller = select.poll()
    for fd in (*streams, pidfd):
        poller.register(fd, select.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        for fd, _ in poller.poll(remaining * 1000):
            if fd == pidfd:
                return None
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                poller.unregister(fd)
                streams[fd][1] = True
                continue
            streams[fd][0].extend(chunk)
            if forward is not None and fd == forward[1]:
                _write_msg(forward[0], {"chunk": chunk})
            if len(streams[fd][0]) > cap:
                return "output_limit"


def _drain(streams, cap, deadline, forward=None):
    """Once every job process is dead the write ends are closed: read what is left, up to EOF (forwarded as in
    _collect)."""
    poller = select.poll()
    pending = {fd for fd, (_, eof) in streams.items() if not eof}
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                poller.unregister(fd)
                pending.discard(fd)
            elif len(streams[fd][0]) <= cap:
                streams[fd][0].extend(chunk)
                if forward is not None and fd == forward[1]:
                    _write_msg(forward[0], {"chunk": chunk})
    return any(len(buffer) > cap for buffer, _ in streams.values())


class Spared:
    """What a kill after a job leaves alone: the waiting children (by pid) and, when they are preloaded, what they
    started (by their slots' uids, which no job of this worker's other slot ever has)."""

    def __init__(self, children=(), uids=(), pids=(), other_cgroups=()):
        self._children, self._extra, self.uids = list(children), list(pids), set(uids)
        self._other_cgroups = list(other_cgroups)
        self._pids = None

    @property
    def pids(self):
        if self._pids is None:
            self._pids = {child.pid for child in self._children if not child.spawning} | set(self._extra)
            if any(child.spawning for child in self._children):
                # A child whose spawner has not answered yet (nor has its middle process exited) is spared without
                # waiting for its pid: it was asked for another slot, and everything in that slot's job cgroups is
                # the server's (a job's processes cannot leave its own; only root may write cgroup.procs).
                for directory in self._other_cgroups:
                    try:  # noqa: SIM105 - no contextlib in the fork server (start-up time)
                        self._pids.update(int(pid) for pid in _cg_read(directory, "cgroup.procs").split())
                    except (OSError, ValueError):
                        pass
        return self._pids

    def __contains__(self, pid):
        return pid in self.pids or (bool(self.uids) and _uid_of(pid) in self.uids)


def _uid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None  # gone, or unreadable: not spared


def _others_in_namespace(spared):
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pid != 1 and pid not in spared]


def _kill_tree(config, pid, spared, slot):
    """Kills every process the job left behind (daemons included), sparing the waiting children."""
    uid = _slot_uid(config, slot)
    if uid < 0:
        _signal_quietly(-pid)  # no dedicated uid: the job's process group is all we can name
    elif os.getpid() == 1:
        for other in _others_in_namespace(spared):
            _signal_quietly(other)
    else:
        killer = os.fork()
        if killer == 0:
            try:
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(killer, 0)


def _signal_quietly(pid, number=signal.SIGKILL):
    try:  # noqa: SIM105 - no contextlib in the fork server (start-up time)
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _reap_zombies():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _reap_leftovers(config, job_pid, spared, slot):
    """Reaps orphans; as PID 1 also waits until nothing but the server and the spared are left."""
    deadline = time.monotonic() + _KILL_GRACE_S
    while time.monotonic() < deadline:
        _reap_zombies()
        if os.getpid() != 1 or not _others_in_namespace(spared):
            return True
        _kill_tree(config, job_pid, spared, slot)
        time.sleep(0.001)
    return False


def _wipe(directory, device=None):
    """Empties directory (shutil would import re and enum: too slow for a cold start). It stays on the directory's
    own file system: a host directory bound read-only beneath it (a venv or an interpreter that lives under /tmp is
    bound at its own path inside the scratch tmpfs) is not the job's to wipe, and walking it cost a failed unlink per
    file of the environment after every job (issue #20: the per-job cost grew with the venv)."""
    if device is None:
        device = os.stat(directory).st_dev
    for entry in os.scandir(directory):
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.stat(follow_symlinks=False).st_dev != device:
                    continue  # a mount point: what is bound there stays as it is
                _wipe(entry.path, device)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _make_workdir(config, slot):
    workdir = os.path.join(config["scratch"], "work")
    os.mkdir(workdir, 0o700)
    uid = _slot_uid(config, slot)
    if uid >= 0:
        os.chown(workdir, uid, uid)
    return workdir


def _cpu_used(pid):
    """CPU seconds a child has used so far, its waited-for children included (the server's own reading)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class _Forked:
    """A child forked ahead of its job, waiting on its go pipe, with the server's ends of its pipes. `warm`: what
    it is preloading for (None: a cold child)."""

    def __init__(self, config, slot, warm=None, files=None, shared=None, prestart=None, main=None):
        self.slot = slot
        self.warm = warm
        self.files = files
        self.main = main if warm is not None else None  # the (program, code) it compiles ahead
        self.preloaded = False
        self.prestart = prestart if warm is not None and warm["spec"].get("prestart") else None
        self.prestarted = False  # running its program ahead in the working dir (see _prestart)
        self.at_gate = False
        self.waited = 0.0  # how long its job waited for it to reach the gate
        self.refused = ""  # why it would not take a job (said at its gate)
        self.note = ""  # for a cold child that runs a job a prestarted one could not take: why
        self._open_pipes()
        self.born = time.monotonic()
        self._pid = self._pidfd = None
        self._config = config
        self._spawner = _spawner_for(config, slot) if warm is None else None
        if self._spawner is None or not self._spawner.request(self, [self._child_fds[n] for n in _SPAWNED_FDS]):
            self._spawner = None
            self._fork_here(files, shared, main)
        self.cpu_before = 0.0

    def _open_pipes(self):
        """The child's pipes (and memfds): the server keeps its ends, the child gets `_child_fds`."""
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        self.ready_r, ready_w = os.pipe()
        go_r, self.go_w = os.pipe()
        self.warm_r, warm_w = os.pipe() if self.warm is not None else (None, None)
        self.code_fd = os.memfd_create("code") if self.warm is not None else None
        self.job_fd = os.memfd_create("job")
        self._child_fds = {"stdout": stdout_w, "stderr": stderr_w, "ready": ready_w, "go": go_r, "job": self.job_fd,
                           "warm": warm_w, "code": self.code_fd}
        if self.prestart is not None:
            import fcntl

            for fd in (stdout_w, stderr_w):
                try:  # noqa: SIM105 (contextlib is an import the fork server does not pay for)
                    fcntl.fcntl(fd, 1031, _PIPE_BYTES)  # F_SETPIPE_SZ
                except OSError:
                    pass
        self.streams = {stdout_r: [bytearray(), False], stderr_r: [bytearray(), False]}

    def _fork_here(self, files=None, shared=None, main=None):
        """The server forks the child itself; the child then moves into its job cgroups (an RCU grace period)."""
        config = self._config
        if config["cg_memory"] or config["cg_pids"]:
            config["joins"] += 1
        if self.warm is not None:
            _runtime_code(self.warm["spec"], os.path.join(config["scratch"], "work"))  # inherited by the child
        pid = os.fork()
        if pid == 0:
            _child(config, self._child_fds, self.slot, self.warm, files or {}, shared, self.prestart, main=main)
        self._forked(pid)

    def _forked(self, pid):
        pidfd = _pidfd_open(pid)  # first: a child already gone leaves its fds here, to be closed (see spawned)
        for name in ("stdout", "stderr", "ready", "go", "warm"):
            if self._child_fds[name] is not None:
                os.close(self._child_fds[name])
        self._child_fds = None
        self._pid, self._pidfd = pid, pidfd

    def spawned(self, pid):
        """The slot's spawner's answer: the child's pid, or 0 if it could not fork one (the server forks it here)."""
        if pid > 0:
            try:
                return self._forked(pid)
            except OSError:
                pass  # gone already (reaped with a job's orphans): a child forked here replaces it
        # A spawner that died before answering may have forked a child with the fds it was sent, and that child would
        # take this one's job from the go pipe (the job then ran unwatched while the server waited for the child it
        # forked, until the wall limit). The child forked here gets pipes of its own; the old ones are closed, and a
        # child left holding them reads EOF at its go pipe and leaves.
        for fd in {*self._child_fds.values(), self.go_w, self.ready_r, *self.streams, self.warm_r}:
            if fd is not None:
                os.close(fd)
        self._open_pipes()
        self._fork_here()

    @property
    def spawning(self):
        """Asked of the slot's spawner, whose answer has not been read yet."""
        return self._pid is None

    @property
    def pid(self):
        if self._pid is None:
            self._spawner.resolve(self)
        return self._pid

    @property
    def pidfd(self):
        if self._pidfd is None:
            self._spawner.resolve(self)
        return self._pidfd

    def alive(self):
        return not select.select([self.pidfd], [], [], 0)[0]

    def wait_preloaded(self, patience=_PRELOAD_PATIENCE_S):
        """A warm child: True once its preload is done (waiting for it until `patience` after its fork), False if
        it died or is still at it."""
        if not self.preloaded:
            remaining = max(0.0, self.born + patience - time.monotonic())
            ready = select.select([self.warm_r, self.pidfd], [], [], remaining)[0]
            self.preloaded = self.warm_r in ready and os.read(self.warm_r, 1) == b"1"
        return self.preloaded and self.alive()

    def start_ahead(self, config):
        """Gives this waiting child the working dir to run its program ahead of its job (see _prestart)."""
        _make_workdir(config, self.slot)
        os.write(self.go_w, b"w")
        self.prestarted = True
        self.prestart_sent = time.monotonic()

    def wait_gate(self, patience=_PRELOAD_PATIENCE_S):
        """A prestarted child: True once its program waits for the job (waiting until `patience` after it started)."""
        if not self.at_gate:
            asked = time.monotonic()
            remaining = max(0.0, self.prestart_sent + patience - asked)
            ready = select.select([self.warm_r, self.pidfd], [], [], remaining)[0]
            said = os.read(self.warm_r, 512) if self.warm_r in ready else b""
            self.at_gate = said == b"g"
            self.refused = said[1:].decode("utf-8", "replace") if said[:1] == b"x" else ""
            self.waited = time.monotonic() - asked
        return self.at_gate and self.alive()

    def shared_code(self):
        """What this (preloaded) child compiled for the next ones to reuse, with the files and program it compiled
        from, or None."""
        size = os.fstat(self.code_fd).st_size
        return (self.files, self.main, os.pread(self.code_fd, size, 0)) if size else None

    def discard(self, config, spared):
        """Kills a waiting child (and, when it was preloading as its slot's uid, what it started) and reaps it."""
        _signal_quietly(self.pid)
        try:  # noqa: SIM105 - no contextlib in the fork server (start-up time)
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass  # already reaped with the orphans of a job
        if self.warm is not None:
            _kill_tree(config, self.pid, spared, self.slot)
            _reap_leftovers(config, self.pid, spared, self.slot)
        if self.prestarted:
            _wipe(config["scratch"])  # its working dir: the next job's must start empty
        self.close()

    def go(self, config, job):
        """Hands the job over and starts it; returns the start time."""
        job["workdir"] = os.path.join(config["scratch"], "work") if self.prestarted else _make_workdir(config, self.slot)
        if self.warm is not None:
            self.cpu_before = _cpu_used(self.pid)  # the preload's: not the job's to account for
        os.write(self.job_fd, marshal.dumps(job))
        os.close(self.job_fd)
        self.job_fd = None
        started = time.monotonic()
        try:  # noqa: SIM105 - no contextlib in the fork server (start-up time)
            os.write(self.go_w, b"1")
        except BrokenPipeError:
            pass  # it died preparing; its stderr says why and setup_ok will be False
        return started

    def output(self, fd):
        return bytes(self.streams[fd][0])

    def close(self):
        for fd in (self.go_w, self.pidfd, self.ready_r, *self.streams, self.job_fd, self.warm_r, self.code_fd):
            if fd is not None:
                os.close(fd)


# What a spawned child gets, in this order, through the spawner's socket (a cold child's fds: see _Forked).
_SPAWNED_FDS = ("stdout", "stderr", "ready", "go", "job")


class _Spawner:
    """Forks one slot's cold children inside that slot's job cgroups, so that no job's child has to move into them.

    Moving a process into a v1 cgroup (a write to cgroup.procs) takes cgroup_threadgroup_rwsem for writing, which
    waits for an RCU grace period: about 10 ms on an idle VM, tens of ms under load. With one move per job, the
    child that was to run the next job was often still moving when that job came (issue #20). A fork inherits its
    parent's cgroups for nothing, so each slot has a spawner: forked once by the server, it moves into the slot's job
    cgroups once, then forks that slot's cold children on request. It forks each through a short-lived middle process
    that exits at once, so the child is re-parented to this server (PID 1, or a subreaper without bubblewrap) and
    the server waits for it, reads its rusage and kills it exactly as a child it forked itself.

    The spawner stays root and never runs anything of a job; it is spared by every kill, like the waiting children,
    and counts as one process in its slot's pids cgroup (pids.max leaves room for it). If it dies (a job's OOM kill
    may pick it), the server forks that slot's children itself again, as before: slower, never different.
    """

    def __init__(self, config, slot):
        import _socket

        self.slot, self._config = slot, config
        self.sock, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self.pending = []  # children whose pid has not come back yet, in request order
        config["joins"] += 1
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            _spawner_main(config, slot, theirs)
        theirs.close()

    def request(self, child, fds):
        """Asks for a child with these fds (its ends of its pipes); the answer is read when the child's pid is
        first needed, so the fork happens while the server goes on. False if the spawner is gone."""
        import _socket

        try:
            self.sock.sendmsg([b"f"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
        except OSError:
            self._gone()
            return False
        self.pending.append(child)
        return True

    def _gone(self):
        if self._config["spawners"].get(self.slot) is self:
            del self._config["spawners"][self.slot]

    def resolve(self, child):
        """Reads answers (in request order) up to `child`'s. A spawner that died answers 0 for all its children, and
        the server forks them itself."""
        while child in self.pending:
            first = self.pending.pop(0)
            try:
                answer = self.sock.recv(4)
            except OSError:
                answer = b""
            if len(answer) != 4:
                self._gone()
            first.spawned(struct.unpack("!i", answer)[0] if len(answer) == 4 else 0)


_SPAWNER_STARTS = 6  # spawners a worker may start in all: one that keeps dying is not worth a fork per job


def _spawner_for(config, slot):
    """The slot's spawner; a new one if it died (at most _SPAWNER_STARTS in all); None without cgroups to be born in,
    or in a one-job sandbox."""
    spawner = config["spawners"].get(slot)
    if spawner is None and config["spawner_starts"] < _SPAWNER_STARTS:
        config["spawner_starts"] += 1
        spawner = config["spawners"][slot] = _Spawner(config, slot)
    return spawner


def _spawner_main(config, slot, sock):
    """The spawner's loop (see _Spawner); never returns."""
    import _socket

    try:
        _join_cgroups(config, slot)
        # Nothing of the server's but its socket: fds 0 and 1 are /dev/null already (see main), 2 is its stderr.
        os.closerange(3, sock.fileno())
        os.closerange(sock.fileno() + 1, 65536)
        pid_r, pid_w = os.pipe()
        fd_bytes = _socket.CMSG_SPACE(len(_SPAWNED_FDS) * 4)
        while True:
            data, ancillary, _, _ = sock.recvmsg(16, fd_bytes)
            if not data:
                os._exit(0)  # the server is gone or shutting down
            fds = []
            for level, kind, payload in ancillary:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    fds += struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) - len(payload) % 4])
            pid = 0
            if len(fds) == len(_SPAWNED_FDS):
                middle = os.fork()
                if middle == 0:
                    _spawn_child(config, slot, sock, pid_r, pid_w, {name: fds[index] for index, name in enumerate(_SPAWNED_FDS)})
                _, status = os.waitpid(middle, 0)
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                    pid = struct.unpack("!i", os.read(pid_r, 4))[0]
            for fd in fds:
                os.close(fd)
            sock.send(struct.pack("!i", pid))
    except BaseException as exc:
        try:
            os.write(2, f"sandbox spawner {slot} stopped: {exc!r}\n".encode())
        finally:
            os._exit(_SETUP_FAILED)


def _spawn_child(config, slot, sock, pid_r, pid_w, fds):
    """The middle process: forks the child and exits, leaving it to the server (its new parent)."""
    try:
        child = os.fork()
        if child == 0:
            sock.close()
            os.close(pid_r)
            os.close(pid_w)
            _child(config, {**fds, "warm": None, "code": None}, slot, None, {}, None, None, joined=True)
        os.write(pid_w, struct.pack("!i", child))
    except BaseException:
        os._exit(1)
    os._exit(0)


def run_job(config, job, child, spared):
    _prepare_cgroups(config, job, child.slot)
    oom_before = _oom_kills(config, child.slot)
    started = child.go(config, job)
    forward = (config["proto_out"], next(iter(child.streams))) if job.get("stream") else None
    fired = _collect(child.pidfd, child.streams, started + job["wall_time"], job["output"], forward)
    if fired:
        _kill_tree(config, child.pid, spared, child.slot)
    _, wait_status, usage = os.wait4(child.pid, 0)
    duration = time.monotonic() - started
    _kill_tree(config, child.pid, spared, child.slot)
    clean = _reap_leftovers(config, child.pid, spared, child.slot)
    if _drain(child.streams, job["output"], time.monotonic() + _KILL_GRACE_S, forward) and fired is None:
        fired = "output_limit"
    setup = os.read(child.ready_r, 512)
    stdout_r, stderr_r = child.streams
    child.close()
    _wipe(config["scratch"])
    if config.get("shm"):  # the sandbox's private /dev/shm: nothing a job leaves there reaches the next
        _wipe(config["shm"])
    if child.prestarted and setup[:1] != b"1" and clean:
        # It declined the job (or died before taking it): the job runs on a cold child, as if it had come first.
        cold = run_job(config, job, _Forked(config, child.slot), spared)
        cold["warm"] = "declined: " + (setup[1:].decode("utf-8", "replace") if setup[:1] == b"d" else
                                       "the prestarted child died before its job")
        return cold
    how = "preloaded" if child.warm is not None else ""
    if child.prestarted:
        how = f"prestarted: waited {child.waited:.2f} s for it" if child.waited >= 0.01 else "prestarted"
    return {
        "warm": child.note or how,
        "setup_ok": setup[:1] == b"1",
        "fired": fired,
        "exit_code": _exit_code(wait_status),
        "cpu_s": max(0.0, usage.ru_utime + usage.ru_stime - child.cpu_before),
        "max_rss_kb": usage.ru_maxrss,
        "oom_kills": _oom_kills(config, child.slot) - oom_before,
        "duration_s": duration,
        "stdout": child.output(stdout_r),
        "stderr": child.output(stderr_r),
        "clean": clean,
        "cgroup_joins": config["joins"],  # processes moved into a job cgroup so far (see _Spawner): a count for tests
    }


# ---------------------------------------------------------------- start-up (fallback-only helpers)


def _libc_prctl(*args):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(*[ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]) != 0:
        raise OSError(ctypes.get_errno(), f"prctl{args[:1]} failed")


def _install_seccomp(program):
    """Without bubblewrap: no_new_privs plus the same filter bubblewrap would load."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))

    _libc_prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    fprog = SockFprog(len(program) // 8, program)
    _libc_prctl(22, 2, ctypes.addressof(fprog), 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _start(config):
    if config["subreaper"]:
        _libc_prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back to us to reap
    if config["seccomp"]:
        _install_seccomp(config["seccomp"])
    import _sitebuiltins  # exit()/quit(), which programs call and `-S` leaves out
    import builtins

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


# ---------------------------------------------------------------- which child runs a job


def _spared(config, waiting, slot):
    """What a kill for `slot` (after its job, or discarding its child) spares: the other waiting children, and
    what a preloaded one started (by its uid, never the uid of `slot`)."""
    own = _slot_uid(config, slot)
    other_cgroups = [_cgroup_dir(config, key, other) for other in (0, 1) if other != slot
                     for key in ("cg_memory", "cg_pids") if config[key]][:1]
    return Spared(children=waiting, pids=[spawner.pid for spawner in config["spawners"].values()],
                  other_cgroups=other_cgroups,
                  uids=[uid for uid in (_slot_uid(config, child.slot) for child in waiting if child.warm is not None)
                        if uid >= 0 and uid != own])


def _warm_of(job, state):
    """What a job's warm child must have been prepared with (None: the job runs on a cold child)."""
    if job.get("warm") is None:
        return None
    warm = {"spec": job["warm"], "job": {key: job.get(key) for key in _WARM_JOB_KEYS}}
    return None if _kind(warm) in state["failed"] else warm


def _kind(warm):
    """A warm spec with its job's keys but the CPU budget: a child prepared with a budget serves any job of its kind
    whose budget is no larger (RLIMIT_CPU's hard limit is the one thing the budget sets before the job, see
    _start_cpu_budget). The eval harness's and the tracer's budgets follow their inputs; they still share children."""
    return {"spec": warm["spec"], "job": {key: value for key, value in warm["job"].items() if key != "cpu_time"}}


def _serves(prepared, want):
    return (prepared is not None and want is not None and _kind(prepared) == _kind(want)
            and prepared["job"]["cpu_time"] >= want["job"]["cpu_time"])


def _widest(want, state):
    """What a child for `want` is prepared with: the largest CPU budget this kind of job has had (so that the next
    job of the kind, smaller or larger than this one, finds one that serves it)."""
    widest = state.get("widest")
    if widest is not None and _kind(widest) == _kind(want) and widest["job"]["cpu_time"] >= want["job"]["cpu_time"]:
        return widest
    state["widest"] = want
    return want


def _fork(config, slot, warm, state):
    if warm is not None:
        try:  # the preload runs under the job's memory and process limits, in the slot's job cgroups
            _prepare_cgroups(config, warm["job"], slot)
        except OSError:
            warm = None
    if warm is None:
        return _Forked(config, slot)
    prestart = state["prestart"] if state["prestart"] is not None and _kind(state["prestart"][0]) == _kind(warm) \
        else None
    return _Forked(config, slot, warm, state["files"], state["code"], prestart and prestart[1], state["main"])


def _child_for(config, job, waiting, state):
    """A preloaded child for a job with a warm spec: one that has finished its preload, else the oldest one (waiting
    for its preload to finish); otherwise the oldest cold child, or a cold one forked now in the slot of a child
    that cannot take the job."""
    want = _warm_of(job, state)
    ahead = [index for index, child in enumerate(waiting) if child.prestarted]
    if ahead and not _serves(waiting[ahead[0]].warm, want):  # the job is not the kind it runs ahead for
        child = waiting.pop(ahead[0])
        child.discard(config, _spared(config, waiting, child.slot))
        waiting.insert(ahead[0], _Forked(config, child.slot))
        ahead = []
    matching = [index for index, child in enumerate(waiting) if _serves(child.warm, want)]
    if ahead:
        child = waiting.pop(ahead[0])
        if child.wait_preloaded() and child.wait_gate():
            return child
        child.discard(config, _spared(config, waiting, child.slot))  # refused, hung or died ahead: this job runs cold
        cold = _Forked(config, child.slot)
        cold.note = "declined: " + (child.refused or "the prestarted child did not reach its gate")
        return cold
    if matching:
        done = [index for index in matching if waiting[index].wait_preloaded(patience=0)]
        child = waiting.pop((done or matching)[0])
        if child.wait_preloaded():
            state["code"] = child.shared_code() or state["code"]
            return child
        state["failed"].append(_kind(want))  # died or hung while preloading: this spec runs cold from now on
        child.discard(config, _spared(config, waiting, child.slot))
        return _Forked(config, child.slot)
    child = waiting.pop(0)
    if child.warm is None and child.alive():
        return child
    child.discard(config, _spared(config, waiting, child.slot))
    return _Forked(config, child.slot)


def _refill(config, job, result, child, waiting, state):
    """After a job: its slot gets a child for the same kind of job; after a job with a warm spec, every waiting
    child is made one for that spec and that program (the next job most likely has them too). After one that may be
    prestarted and ran to its end, the children forked now may run it ahead of the next job, on its files and data."""
    want, prepared = _warm_of(job, state), None
    if want is not None:
        state["files"] = job["files"]  # what the next preload compiles ahead (used only where byte-identical)
        state["main"] = (job["program"], job["code"])  # and the program, where it is the same
        if want["spec"].get("prestart") and result["exit_code"] == 0 and result["fired"] is None:
            state["prestart"] = (want, {key: job.get(key) for key in ("files", "links", "program", "code", "argv")})
        prepared = _widest(want, state)
    waiting.append(_fork(config, child.slot, prepared, state))
    if want is not None:
        for index, other in enumerate(waiting):
            if not _serves(other.warm, want) or other.main != state["main"]:  # another kind, or another program
                other.discard(config, _spared(config, waiting[:index] + waiting[index + 1:], other.slot))
                waiting[index] = _fork(config, other.slot, prepared, state)
    newest = state["prestart"] and state["prestart"][1]
    ahead = next((other for other in waiting if other.prestart is not None and other.prestart is newest),
                 next((other for other in waiting if other.prestart is not None), None))
    if ahead is not None and not job.get("queued") and not any(other.prestarted for other in waiting):
        ahead.start_ahead(config)  # the working dir is free until the next job (none was waiting behind this one)


def main():
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    config = marshal.loads(bytes.fromhex(sys.argv[1]))
    config["proto_out"] = proto_out
    _start(config)
    # What the server holds now (its modules, functions and code) moves out of the collector's sight: a child's
    # collections no longer walk it, so its pages stay shared with the server instead of being copied into every child
    # (copy-on-write faults were the largest kernel cost of a warm job). Objects the server makes later are few.
    gc.freeze()
    config["joins"], config["spawners"] = 0, {}
    # No spawners without cgroups to be born in, nor in a one-job sandbox (a cold run).
    in_cgroups = bool(config["cg_memory"] or config["cg_pids"]) and not config.get("one_job")
    config["spawner_starts"] = 0 if in_cgroups else _SPAWNER_STARTS
    # Two children wait in turn, so one warms up (or preloads) while the other runs a job; a one-job sandbox (a cold
    # run) needs only the first, which moves into its cgroups itself. A pool's are born there (_Forked asks the
    # slot's spawner, started here, see _Spawner).
    waiting = [_Forked(config, slot) for slot in ((0,) if config.get("one_job") else (0, 1))]
    state = {"files": {}, "main": None, "code": None, "failed": [], "prestart": None, "widest": None}
    _write_msg(proto_out, {"ready": True})
    while (job := _read_msg(proto_in)) is not None:
        child = _child_for(config, job, waiting, state)
        result = run_job(config, job, child, _spared(config, waiting, child.slot))
        _write_msg(proto_out, result)
        if not result["clean"]:
            return  # something survived the kill: let the supervisor replace this worker
        if config.get("one_job"):
            break  # a cold run: no child for a next job
        _refill(config, job, result, child, waiting, state)
    for child in waiting:
        os.close(child.go_w)  # EOF on its go pipe: the waiting child exits

