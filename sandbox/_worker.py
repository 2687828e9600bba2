"""One sandboxed fork server (a bubblewrap process) and the supervisor's side of its protocol."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import marshal
import os
import select
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox import _reaper, _seccomp
from sandbox._bytecode import cached_bytecode
from sandbox._cgroups import CgroupSlot
from sandbox._errors import SandboxError
from sandbox._host import HostSupport
from sandbox._tree import TREE_IN_SANDBOX, links

if TYPE_CHECKING:  # a worker starts before pydantic is imported (sandbox/_early.py)
    from sandbox._models import ExecRequest

_HEADER = struct.Struct("!I")
_SERVER = Path(__file__).with_name("_fork_server.py")
_SERVER_MODULE = "_semcoder_fork_server"  # its name in the sandbox's processes, wherever it was imported from
_SANDBOX_DIR = "/.sandbox"
_SERVER_IN_SANDBOX = f"{_SANDBOX_DIR}/{_SERVER_MODULE}.py"
_CGROUP_IN_SANDBOX = "/.sandbox/cgroup"
_SCRATCH_IN_SANDBOX = "/tmp"
_START_TIMEOUT_S = 30.0
_ANSWER_GRACE_S = 15.0
_uid_counter = itertools.count()
LOCALE_ENV = frozenset({"LC_ALL", "LC_CTYPE", "LANG"})


class WorkerDied(SandboxError):
    """The fork server went away; the worker must be replaced."""


def _dedicated_uid() -> int:
    """A uid no one else uses, unique per worker slot, so killing 'all of uid' kills only this job's tree."""
    return 1_000_000 + (os.getpid() % 1_000_000) * 1000 + next(_uid_counter) % 1000


def _system_paths() -> list[str]:
    """The shared libraries the interpreter links against and, read-only, /usr/bin (a shell and the usual
    tools: test suites run hook scripts and subprocesses; a setuid bit there grants nothing under bwrap's
    no_new_privs and the dropped capabilities), with the merged-/usr symlinks."""
    args = [*_parents_traversable("/usr/lib"), "--ro-bind", "/usr/lib", "/usr/lib", "--ro-bind", "/usr/bin", "/usr/bin"]
    if Path("/usr/lib64").is_dir():
        args += ["--ro-bind", "/usr/lib64", "/usr/lib64"]
    for top in ("/lib", "/lib64", "/bin"):
        if Path(top).is_symlink():
            args += ["--symlink", os.readlink(top), top]
        elif Path(top).is_dir():
            args += ["--ro-bind", top, top]
    return args


def _parents_traversable(path: str) -> list[str]:
    """bwrap copies the host's modes for parents it creates (/root is 0700); the job's uid must pass."""
    args: list[str] = []
    for parent in reversed(Path(path).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_argv(support: HostSupport, slot: CgroupSlot | None, workdir_mb: int, seccomp_fd: int,
               tree: str | None = None) -> list[str]:
    assert support.bwrap
    args = [support.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--as-pid-1",
            "--cap-drop", "ALL"]
    for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
        args += ["--cap-add", cap]  # the server needs them to drop each job to the dedicated uid
    # --clearenv, then the locale a user's shell has: under bare C, Python >= 3.7 turns on UTF-8 mode (PEP 540),
    # which no plain `pytest` run has, and a request's locale could not turn it off again.
    args += ["--clearenv", "--setenv", "LANG", "C.UTF-8", *_system_paths(), *_parents_traversable(support.python_prefix),
             "--ro-bind", support.python_prefix, support.python_prefix,
             "--proc", "/proc", "--dev", "/dev",
             # POSIX semaphores and shared memory (multiprocessing's locks and queues) live in /dev/shm, which
             # bwrap's /dev has root's only; its pages count against the worker's memory cgroup like any file.
             "--perms", "1777", "--size", str(workdir_mb * 1024 * 1024), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(workdir_mb * 1024 * 1024), "--tmpfs", _SCRATCH_IN_SANDBOX,
             "--ro-bind", str(_SERVER), _SERVER_IN_SANDBOX]
    bytecode = cached_bytecode(_SERVER)
    if bytecode is not None:  # beside the server, where its import looks (same mtime and size: the bind's)
        args += ["--ro-bind", bytecode, importlib.util.cache_from_source(_SERVER_IN_SANDBOX)]
    if support.venv_prefix:
        args += [*_parents_traversable(support.venv_prefix), "--ro-bind", support.venv_prefix, support.venv_prefix]
    if tree is not None:  # the project, read-only; jobs link its entries into their working dirs (sandbox/_tree.py)
        args += ["--ro-bind", tree, TREE_IN_SANDBOX]
    if slot:
        for controller, directory in slot.dirs.items():
            args += ["--bind", str(directory), f"{_CGROUP_IN_SANDBOX}/{controller}"]
    if seccomp_fd >= 0:
        args += ["--seccomp", str(seccomp_fd)]
    return [*args, "--chdir", _SCRATCH_IN_SANDBOX, "--"]


# The server is imported, not run as a script (a script's bytecode is never cached): its directory is on sys.path
# only for that import, and it runs under a module name of its own (not __main__, which each job's program gets).
_LAUNCH = ("import sys; sys.path.insert(0, %r); import %s as server; del sys.path[0]; "
           f"sys.modules[{_SERVER_MODULE!r}] = server; server.main()")


def _seccomp_pipe() -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, _seccomp.build_filter())
    os.close(write_end)
    return read_end


class LocalWorker:
    """A warm sandbox: one fork server inside bubblewrap (or, partially isolated, without it)."""

    def __init__(self, support: HostSupport, workdir_mb: int, tree: str | None = None, one_job: bool = False) -> None:
        self.support = support
        self.one_job = one_job  # a cold run's sandbox: its server prepares no child for a second job
        self.workdir_mb = workdir_mb
        self.tree = tree  # bound read-only at /project for this worker's life (None: no tree)
        # One dedicated uid per job slot of the fork server (it keeps two children, used in turn): the job running in
        # one slot never has the uid of the child waiting (and maybe preloading) in the other.
        self.uids = [_dedicated_uid(), _dedicated_uid()] if support.dedicated_uid else [-1, -1]
        self.uid = self.uids[0]
        self._slot = CgroupSlot(support.cgroup_bases) if support.cgroup_bases else None
        self._host_scratch: Path | None = None
        self._ready = False
        try:
            self._proc = self._spawn()
        except BaseException:
            self._remove_slot()
            raise

    def _server_config(self, in_bwrap: bool) -> dict[str, object]:
        cgroups = {c: (f"{_CGROUP_IN_SANDBOX}/{c}" if in_bwrap else str(d))
                   for c, d in (self._slot.dirs.items() if self._slot else [])}
        if not in_bwrap:
            self._host_scratch = Path(os.path.realpath(_make_host_scratch()))
        return {
            "uid": self.uid,
            "cg_memory": cgroups.get("memory", ""),
            "cg_pids": cgroups.get("pids", ""),
            "uids": self.uids,
            "scratch": _SCRATCH_IN_SANDBOX if in_bwrap else str(self._host_scratch),
            "shm": "/dev/shm" if in_bwrap else "",
            "subreaper": not in_bwrap,
            "seccomp": b"" if in_bwrap or not self.support.seccomp else _seccomp.build_filter(),
            "one_job": self.one_job,
        }

    def _spawn(self) -> subprocess.Popen[bytes]:
        in_bwrap = self.support.bwrap is not None
        seccomp_fd = _seccomp_pipe() if in_bwrap and self.support.seccomp else -1
        prefix = bwrap_argv(self.support, self._slot, self.workdir_mb, seccomp_fd, self.tree) if in_bwrap else []
        config = marshal.dumps(self._server_config(in_bwrap)).hex()
        where, module = (_SANDBOX_DIR, _SERVER_MODULE) if in_bwrap else (str(_SERVER.parent), _SERVER.stem)
        argv = [*prefix, self.support.python, "-I", "-S", "-c", _LAUNCH % (where, module), config]
        _reaper.enable_subreaper()
        try:
            with _reaper.spawn_lock:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={"LANG": "C.UTF-8"},
                                        pass_fds=[seccomp_fd] if seccomp_fd >= 0 else [])
                _reaper.owned_pids.add(proc.pid)
        except OSError as exc:
            raise SandboxError(f"cannot start the sandbox ({argv[0]}): {exc}") from exc
        finally:
            if seccomp_fd >= 0:
                os.close(seccomp_fd)
        return proc

    # ------------------------------------------------------------------ protocol

    def _read_exact(self, size: int, deadline: float) -> bytes:
        fd = self._proc.stdout.fileno()  # type: ignore[union-attr]
        chunks: list[bytes] = []
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self.kill()
                raise SandboxError("the sandbox fork server stopped answering; it was killed")
            chunk = os.read(fd, size)
            if not chunk:
                raise WorkerDied(f"the sandbox fork server exited unexpectedly: {self._stderr_tail()}")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read_msg(self, deadline: float) -> dict[str, object]:
        (size,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        return marshal.loads(self._read_exact(size, deadline))

    def _send(self, message: dict[str, object]) -> None:
        data = marshal.dumps(message)
        try:
            self._proc.stdin.write(_HEADER.pack(len(data)) + data)  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"the sandbox fork server is gone: {self._stderr_tail()}") from exc

    def _stderr_tail(self) -> str:
        self.kill()
        text = self._proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        return text.strip()[-2000:] or f"exit status {self._proc.returncode}"

    def wait_ready(self) -> None:
        if not self._ready:
            self._read_msg(time.monotonic() + _START_TIMEOUT_S)
            self._ready = True

    def execute(self, request: ExecRequest, warm: dict[str, object] | None = None, queued: bool = False,
                on_output: Callable[[bytes], None] | None = None) -> dict[str, object]:
        """Runs one request; returns the fork server's raw evidence (see _fork_server.run_job). `warm`: the job's
        preload spec (sandbox.job.warm_spec), so that the children forked after it are preloaded for the next.
        `queued`: other jobs were waiting when this one started (the next one will not leave time to start ahead).
        `on_output`: called with the program's stdout piece by piece while it runs (the evidence still has all of
        it); one that raises is not called again."""
        if request.tree is not None and request.tree != self.tree:
            raise SandboxError(f"this worker has {self.tree or 'no tree'} bound, not the request's {request.tree}")
        self._send({**job_message(request, self.support, warm), "queued": queued, "stream": on_output is not None})
        self.wait_ready()
        deadline = time.monotonic() + request.limits.wall_time_s + _ANSWER_GRACE_S
        while "chunk" in (evidence := self._read_msg(deadline)):
            if on_output is not None:
                try:
                    on_output(evidence["chunk"])  # type: ignore[arg-type]
                except Exception:  # the stream only tells early what the evidence says
                    on_output = None
        if not evidence["clean"]:
            self.close()
        return evidence

    # ------------------------------------------------------------------ lifetime

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()
        self._proc.wait()

    def close(self) -> None:
        """EOF tells the server to exit; the pid namespace dies with it."""
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        if not _exited_within(self._proc.pid, 5.0):
            self.kill()
        self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        with _reaper.spawn_lock:
            _reaper.owned_pids.discard(self._proc.pid)
        _reaper.reap_strays()
        self._remove_slot()
        if self._host_scratch:
            import shutil

            shutil.rmtree(self._host_scratch, ignore_errors=True)
            self._host_scratch = None

    def _remove_slot(self) -> None:
        if self._slot:
            self._slot.remove()
            self._slot = None


def _exited_within(pid: int, seconds: float) -> bool:
    """Popen.wait(timeout) polls with sleeps; a pidfd wakes us the moment the process exits."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def _make_host_scratch() -> str:
    import tempfile

    scratch = tempfile.mkdtemp(prefix="semcoder-sandbox-")
    # mkdtemp makes it 0700 for the supervisor's uid; the job's dedicated uid must pass through it to reach its
    # own working dir, without being able to list its neighbours.
    os.chmod(scratch, 0o711)
    return scratch


def _program_name(files: dict[str, bytes | str], linked: dict[str, str]) -> str:
    return "__main__.py" if "main.py" in files or "main.py" in linked else "main.py"


def _checked_files(files: dict[str, bytes | str]) -> dict[str, bytes]:
    checked = {}
    for name, content in files.items():
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts:
            raise ValueError(f"ExecRequest.files: {name!r} must be a relative path inside the working dir")
        checked[name] = content.encode() if isinstance(content, str) else bytes(content)
    return checked


def job_message(request: ExecRequest, support: HostSupport, warm: dict[str, object] | None = None) -> dict[str, object]:
    limits = request.limits
    files = _checked_files(request.files)
    # Without bubblewrap nothing is bound: the links reach the tree at its host path.
    linked = links(request.tree, files, TREE_IN_SANDBOX if support.bwrap else request.tree) if request.tree else {}
    program = _program_name(request.files, linked)
    linked.pop(program, None)  # the program takes its name, as a file of the request would
    return {
        "code": request.code,
        "stdin": bytes(request.stdin),
        "warm": warm,
        "files": files,
        "links": linked,
        "program": program,
        "argv": list(request.argv),
        # HOME and TMPDIR (the private working dir) are set by the fork server. USER/LOGNAME: there is no
        # /etc/passwd inside, and getpass.getuser() (tempfile, many test suites) needs a name.
        "env": {"PATH": f"{support.python_prefix}/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                "USER": "sandbox", "LOGNAME": "sandbox", **request.env},
        # The interpreter read the locale when it started; a request that sets one gets it read again.
        "locale": bool(LOCALE_ENV & set(request.env)),
        "wall_time": limits.wall_time_s,
        "cpu_time": limits.cpu_time_s,
        "memory": limits.memory_mb * 1024 * 1024,
        "output": limits.output_bytes,
        "processes": limits.processes,
        "file_size": limits.file_size_mb * 1024 * 1024,
    }
