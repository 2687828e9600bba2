"""Runs programs on literal inputs INSIDE the sandbox and reports each call. Standard library only.

Started by `_exec_driver.py` as `python -S -s -B _exec_child.py` with its own PYTHONHASHSEED; its
request (a fresh key, the options and the items still to run) arrives on stdin and is read before any
program runs. For each item the item's code is executed as a fresh module and its entry function is
called on every input (a literal argument list, read with `ast.literal_eval`). The child speaks the job
protocol's frames (`_semcoder_job.Channel`, MACed with the child's key) on a private dup of its stdout
taken before any program runs (`_semcoder_job.open_channel`; fd 1 then points at stderr, fd 0 at
/dev/null): first a `ready` record, then one record per item as soon as the item is done, so the driver
knows how far a child got if it dies, and nothing a program prints or writes to any fd can pass for a
report.

An audit hook, armed only while the program runs, flags file writes, reads outside the interpreter's
own tree, sockets, subprocesses, signals and other process-level effects: the program's first such
attempt fails with `SideEffect` and the call is reported as a side effect even if the program catches it.
Reading the clock or a random source raises no audit event, so a profile function, armed the same way,
watches C calls instead: the clock functions of `time` and `datetime`, `os.urandom`/`getrandom` and the
generator methods of every `random.Random` (seeded or not: a record must not teach a generator's
stream) end the call the same way as `clock` or `randomness`; it sees them however they are reached
(`from time import time`, an alias, a bound method). What the program prints is kept up to `output_chars`
characters; the write that passes the cap ends the call as `output_flood` (a program that floods its
output is no training data, and the cap keeps a 6 MB print from filling the child's memory).
"""

import _random
import ast
import datetime
import io
import json
import os
import random  # noqa: F401  (imported here, unwatched: its import seeds a generator, which no program did)
import resource
import signal
import sys
import time

from _semcoder_job import open_channel  # the job runtime, shipped next to this file

_FLAGGED_PREFIXES = ("socket.", "subprocess.", "shutil.", "ctypes.", "winreg.", "urllib.", "http.", "ftplib.",
                     "smtplib.", "webbrowser.", "os.exec", "os.spawn", "os.posix_spawn")
_FLAGGED = frozenset({
    "os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.remove", "os.rename", "os.rmdir",
    "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.link", "os.symlink", "os.utime", "os.putenv",
    "os.unsetenv", "os.chdir", "os.startfile", "os.setxattr", "os.removexattr", "builtins.input",
    "signal.pthread_kill", "resource.setrlimit", "sys.addaudithook", "pty.spawn", "glob.glob", "os.listdir",
    "os.scandir", "os.walk", "mmap.__new__", "sqlite3.connect", "tempfile.mkstemp", "tempfile.mkdtemp",
})
_WRITE_MODES = ("w", "a", "x", "+")
_OWN_TREES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})


_CLOCK_NAMES = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time",
                "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime", "clock_gettime_ns", "localtime",
                "gmtime", "ctime", "asctime", "strftime")  # the last five read the clock when given no time
_WATCHED = {
    **{getattr(time, name): ("clock", "time." + name) for name in _CLOCK_NAMES if hasattr(time, name)},
    datetime.datetime.now: ("clock", "datetime.now"), datetime.datetime.today: ("clock", "datetime.today"),
    datetime.datetime.utcnow: ("clock", "datetime.utcnow"), datetime.date.today: ("clock", "date.today"),
    os.urandom: ("randomness", "os.urandom"),
    **({os.getrandom: ("randomness", "os.getrandom")} if hasattr(os, "getrandom") else {}),
}
_BUILTIN = type(len)


class SideEffect(BaseException):
    """A BaseException, so that `except Exception` in the program cannot hide it."""


class OutputFlood(BaseException):
    """The program printed past the cap (a BaseException for the same reason as SideEffect)."""


class CallTimeout(BaseException):
    pass


class _Guard:
    def __init__(self):
        self.armed = False
        self.hits = []

    def hook(self, event, args):
        if not self.armed:
            return
        if self._flagged(event, args):
            self._hit("side_effect", event)

    def profile(self, frame, event, arg):
        """sys.setprofile's function: a C call of a clock or random source ends the call (see the docstring)."""
        if event != "c_call" or not self.armed:
            return
        watched = _WATCHED.get(arg) if type(arg) is _BUILTIN else None
        if watched is None and type(arg) is _BUILTIN and isinstance(arg.__self__, _random.Random):
            watched = ("randomness", "random.Random." + arg.__name__)
        if watched is not None:
            self._hit(*watched)

    def _hit(self, kind, event):
        self.hits.append((kind, event))
        self.armed = False  # raising again while the program unwinds would only add noise
        raise SideEffect(event)

    def _flagged(self, event, args):
        if event == "open":
            return _flagged_open(args)
        if event in ("os.listdir", "os.scandir") and args and _in_own_tree(args[0]):
            return False  # the import system lists the stdlib's directories
        return event in _FLAGGED or event.startswith(_FLAGGED_PREFIXES)


def _in_own_tree(path):
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    if not isinstance(path, str):
        return False
    return os.path.abspath(path).startswith(_OWN_TREES)


def _flagged_open(args):
    path, mode = args[0], args[1] if len(args) > 1 else "r"
    if isinstance(mode, str) and any(flag in mode for flag in _WRITE_MODES):
        return True
    if isinstance(path, int):
        return True  # opening a raw descriptor (e.g. fd 0 or 1) is never something a pure function does
    return not _in_own_tree(path)


def _on_alarm(signum, frame):
    raise CallTimeout()


def _args_of(text):
    return ast.literal_eval(f"({text},)") if text.strip() else ()


def _representable(value, limit):
    """(repr, problem): the repr must read back with literal_eval as an equal value with the same repr."""
    text = "".join([repr(value)])  # an exact str: a __repr__ may return a str subclass
    if len(text) > limit:
        return None, "too_large"
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, "unrepresentable"
    if back != value or repr(back) != text:
        return None, "unrepresentable"
    return text, None


class _CappedOutput(io.StringIO):
    """The program's stdout/stderr: kept up to `cap` characters; the write past it raises OutputFlood."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap
        self.flooded = False

    def write(self, text):
        if self.flooded or self.tell() + len(text) > self.cap:
            self.flooded = True
            raise OutputFlood()
        return super().write(text)


class _Coverage:
    def __init__(self, filename):
        self.filename = filename
        self.lines = set()

    def global_trace(self, frame, event, arg):
        if frame.f_code.co_filename == self.filename:
            return self.local_trace
        return None

    def local_trace(self, frame, event, arg):
        if event == "line":
            self.lines.add(frame.f_lineno)
        return self.local_trace


class Runner:
    def __init__(self, spec, guard):
        self.spec = spec
        self.guard = guard
        self.filename = "<pyx-program>"

    def run_item(self, item):
        namespace = {"__name__": "pyx_program", "__builtins__": __builtins__}
        load = self._guarded(lambda: exec(compile(item["code"], self.filename, "exec"), namespace),
                             self.spec["call_timeout_s"] * 4)
        if load["status"] != "ok":
            return {"load": load, "calls": []}
        function = namespace.get(item["entry"])
        if not callable(function):
            return {"load": {"status": "error", "error": f"NameError: no function {item['entry']!r}"}, "calls": []}
        calls = []
        for text in item["calls"]:
            # After one call runs out of time the rest are skipped: one hang per item is enough to know.
            hung = calls and calls[-1]["status"] in ("timeout", "skipped")
            calls.append({"status": "skipped"} if hung else self._call(function, text))
        return {"load": load, "calls": calls}

    def _call(self, function, text):
        try:
            args = _args_of(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            return {"status": "bad_input", "error": f"{type(exc).__name__}: {exc}"}
        coverage = _Coverage(self.filename) if self.spec.get("coverage") else None
        box = {}
        outcome = self._guarded(lambda: box.setdefault("value", function(*args)),
                                self.spec["call_timeout_s"], coverage)
        if coverage is not None:
            outcome["lines"] = sorted(coverage.lines)
        if outcome["status"] == "ok":
            text, problem = _representable(box.get("value"), self.spec["repr_chars"])
            if problem:
                outcome["status"] = problem
            else:
                outcome["output"] = text
        return outcome

    def _guarded(self, action, seconds, coverage=None):
        """Runs `action` with the audit hook armed, a time budget and the program's output captured."""
        captured = _CappedOutput(self.spec.get("output_chars", 10_000))
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = captured
        self.guard.hits = []
        signal.setitimer(signal.ITIMER_REAL, seconds)
        outcome = {"status": "ok"}
        try:
            if coverage is not None:
                sys.settrace(coverage.global_trace)
            sys.setprofile(self.guard.profile)
            self.guard.armed = True
            action()
        except CallTimeout:
            outcome = {"status": "timeout"}
        except (SideEffect, OutputFlood):
            pass
        except RecursionError:
            outcome = {"status": "error", "error": "RecursionError: maximum recursion depth exceeded"}
        except BaseException as exc:  # the program failing is data
            outcome = {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        finally:
            self.guard.armed = False
            sys.setprofile(None)
            sys.settrace(None)
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        if self.guard.hits:
            kind, event = self.guard.hits[0]
            outcome = {"status": kind, "error": event}
        elif captured.flooded:  # even if the program caught OutputFlood and carried on
            outcome = {"status": "output_flood", "error": f"printed more than {captured.cap} characters"}
        outcome["printed"] = bool(captured.getvalue())
        return outcome


def main():
    request = json.loads(sys.stdin.buffer.read())  # the driver's own bytes, read before any program runs
    # Frames go to a private dup of fd 1 from now on; fd 1 points at stderr, fd 0 at /dev/null.
    channel = open_channel(request.pop("key"))
    memory = request["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    sys.setrecursionlimit(request["recursion_limit"])
    signal.signal(signal.SIGALRM, _on_alarm)
    guard = _Guard()
    sys.addaudithook(guard.hook)
    runner = Runner(request, guard)
    items = request.pop("items")
    channel.send("ready")
    for item in items:
        channel.send(runner.run_item(item))
    os._exit(0)  # no atexit hook or lingering thread of a program runs after the last report


if __name__ == "__main__":
    main()
