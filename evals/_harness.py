"""The job program (sandbox/job.py) that runs every eval job inside the sandbox (stdlib only, self-contained).

The host (evals/_jobs.py) sends this file's source as a job program and the eval job itself as the job's
data; the job runtime calls ``main(data, channel)``, which runs the untrusted solution and sends each result
as one record on the job's channel. Like the runtime (which imports `_blake2`, `_json`, `marshal`, `os` and
`sys`), it imports only builtin/C modules (`_json`, `_signal`, `os`, `sys`, `time`): `json`, `signal` and
`hashlib` would pull in `re` and `enum` and cost more than the sandbox's whole fork per job. (`decode`,
`digest` and `keyed_digest` are the host's; they import what they need when called.)

Threat model. The solution is model-written code that may be wrong in any way, print anything,
exit early, swallow exceptions, patch builtins, or return objects whose ``__eq__`` always says
True. It runs in this same process, so a deliberate attack on the harness's memory could forge
records; that is out of scope (the sandbox protects the host; the worst outcome is one wrong
verdict). What keeps naive or accidental gaming from passing:

- In ``diff`` mode the verdict is the host's: the harness never sees the expected outputs, only
  keyed digests of them for stopping early; it reports each output by an unkeyed digest (and, where
  needed, its value) produced by ``encode``, which accepts exact builtin types only. Forging a
  passing record means producing the right outputs.
- In ``program`` and ``crux`` modes the checked function's return values must be plain values
  (``require_plain``), so ``==`` in the tests is builtin equality, and a pass needs the harness
  to send its own one "passed" record after the test code finished.
- Results go only through the job's channel (sandbox/_job_child.py): frames MACed with a per-job key
  the solution is never given, on a private fd, and a job counts only when the runtime ended it after
  ``main`` returned. fds 0, 1 and 2 point to /dev/null while the solution runs, so prints and fake
  frames on stdout are lost; fake frames written to the channel's fd (found in /proc/self/fd) fail
  the job; ``sys.exit(0)`` is an error like any exception, and ``os._exit(0)`` leaves the job unended;
  ``atexit`` hooks and ``__del__`` never run after the report (the runtime leaves with ``os._exit``). A
  job that is not ended properly never passes (the host's rule, evals/_jobs.py); the records it sent
  before it died still say which inputs failed.
"""

import _json
import _signal
import os
import sys
import time

try:  # in the sandbox the job runtime is imported before this program: bound before any solution runs
    from _semcoder_job import JobTimeout, time_limit
except ImportError:  # on the host, which uses only the encoding
    JobTimeout, time_limit = TimeoutError, None

STOP_KEY = b"semcoder-early-stop"
SMALL_VALUE_CHARS = 65536
WALL_BACKSTOP = 3.0
_DECIMAL_BITS = 8000
_DICT_LIKE_NAMES = ("Counter", "OrderedDict", "defaultdict")
_INF = float("inf")


class NotPlainError(TypeError):
    """A value of a type other than an exact builtin (None, bool, int, float, complex, str, bytes,
    list, tuple, dict, set, frozenset) or a stdlib dict-like mapping."""


# --- the plain-value encoding ------------------------------------------------------------------

def encode(value) -> str:
    """Tagged JSON text of a plain value, canonical so that equal values encode equally; NotPlainError
    for anything else.

    Lists are JSON arrays; tuples, sets, frozensets, dicts, complex numbers, bytes and huge ints are
    tagged objects ({"t": [...]}, {"s": [...]}, {"f": [...]}, {"d": [[k, v], ...]}, {"c": [re, im]},
    {"b": hex}, {"x": hex}), so types round-trip exactly; set and dict entries are sorted by their
    text. Counter, OrderedDict and defaultdict encode as dicts (Python's `==` says they equal one;
    MBPP+'s Mbpp/88 returns a Counter). Text is built bottom-up, one string per value, so memory
    stays near the size of the result.
    """
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        if not _is_dict_like(value):
            raise NotPlainError(f"not a plain value: {type(value).__name__}")
        encoder = _encode_dict
    return encoder(value)


def _is_dict_like(value) -> bool:
    collections = sys.modules.get("collections")
    return collections is not None and any(type(value) is getattr(collections, n) for n in _DICT_LIKE_NAMES)


def _encode_int(value: int) -> str:
    if value.bit_length() > _DECIMAL_BITS:
        return '{"x":"' + hex(value) + '"}'  # decimal str() of huge ints is limited (and slow); hex is not
    return int.__repr__(value)


def _encode_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _encode_dict(value) -> str:
    pairs = sorted((encode(k), encode(v)) for k, v in value.items())
    return '{"d":[' + ",".join("[" + k + "," + v + "]" for k, v in pairs) + "]}"


_ENCODERS = {
    type(None): lambda value: "null",
    bool: lambda value: "true" if value else "false",
    int: _encode_int,
    float: _encode_float,
    str: _json.encode_basestring_ascii,
    list: lambda value: "[" + ",".join(map(encode, value)) + "]",
    tuple: lambda value: '{"t":[' + ",".join(map(encode, value)) + "]}",
    set: lambda value: '{"s":[' + ",".join(sorted(map(encode, value))) + "]}",
    frozenset: lambda value: '{"f":[' + ",".join(sorted(map(encode, value))) + "]}",
    dict: _encode_dict,
    complex: lambda value: '{"c":[' + _encode_float(value.real) + "," + _encode_float(value.imag) + "]}",
    bytes: lambda value: '{"b":"' + value.hex() + '"}',
}

_DECODERS = {
    "t": lambda items: tuple(_build(i) for i in items),
    "s": lambda items: {_build(i) for i in items},
    "f": lambda items: frozenset(_build(i) for i in items),
    "d": lambda pairs: {_build(k): _build(v) for k, v in pairs},
    "c": lambda parts: complex(parts[0], parts[1]),
    "b": bytes.fromhex,
    "x": lambda text: int(text, 16),
}


def _build(parsed):
    if isinstance(parsed, list):
        return [_build(item) for item in parsed]
    if isinstance(parsed, dict):
        ((tag, body),) = parsed.items()
        return _DECODERS[tag](body)
    return parsed


def decode(text: str):
    """The inverse of `encode` (used by the host)."""
    import json

    return _build(json.loads(text))


def digest(text: str) -> str:
    """The unkeyed digest by which outputs are compared with expected outputs."""
    import _blake2

    return _blake2.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def keyed_digest(text: str) -> str:
    """The digest the harness uses to stop at a first mismatch (never the one verdicts rely on)."""
    import _blake2

    return _blake2.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16, key=STOP_KEY).hexdigest()


def is_floats(value) -> bool:
    """EvalPlus's test for float outputs (those get a tolerance): a float or a non-empty list/tuple of them."""
    if isinstance(value, float):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, float) for v in value)


def require_plain(value):
    encode(value)
    return value


def plain_guard(function):
    """Wrap `function` so that tests calling it see only plain return values."""

    def guarded(*args, **kwargs):
        return require_plain(function(*args, **kwargs))

    return guarded


# --- running checks ------------------------------------------------------------------------------
# The job runtime's timer (`time_limit`: wall clock, raising `JobTimeout`) bounds every check; a per-input
# check of `diff` mode also gets its CPU-time limit (ITIMER_PROF), which raises the same `JobTimeout`.

def _arm(seconds: float, cpu: bool = False) -> None:
    """JobTimeout after `seconds` of wall time or, with `cpu`, after `seconds` of CPU time with a
    wall-time backstop of WALL_BACKSTOP x `seconds`."""
    if cpu:
        _signal.signal(_signal.SIGPROF, _on_cpu_limit)
        _signal.setitimer(_signal.ITIMER_PROF, seconds)
        seconds *= WALL_BACKSTOP
    time_limit(seconds)


def _disarm() -> None:
    time_limit(0)
    _signal.setitimer(_signal.ITIMER_PROF, 0)


def _on_cpu_limit(signum, frame):
    raise JobTimeout("the check's CPU-time limit ran out")


def _failure(exc: BaseException) -> dict:
    if isinstance(exc, JobTimeout):
        return {"s": "timeout"}
    try:
        if isinstance(exc, NotPlainError):
            return {"s": "unserializable", "m": str(exc)[:200]}
        return {"s": "error", "m": f"{type(exc).__name__}: {exc}"[:300]}
    except BaseException:  # an exception whose str() fails (or runs out of time) is still an error
        return {"s": "error", "m": "an exception that cannot be shown"}


def _load_solution(code: str, entry_point: str, seconds: float) -> dict:
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    _arm(seconds)
    try:
        exec(compile(code, "solution.py", "exec"), namespace)
    finally:
        _disarm()
    if not callable(namespace.get(entry_point)):
        raise NameError(f"{entry_point!r} is not defined by the solution")
    return namespace


def run_diff(job: dict, send) -> None:
    """Call the entry point on each input and report each output (EvalPlus's differential tests).

    Every output is reported by its digest `h`; its encoded value `v` travels only where the host
    needs it (see `_wants_value`), so a 100 MB output costs a hash, not a transfer. `stop_digests`
    are keyed digests (`k`, reported when computing expected outputs) of the expected outputs; knowing
    them does not let a solution forge `h`, which is unkeyed and never sent to the sandbox. The run
    stops at the first exception, timeout or unserializable output and, if `stop_on_mismatch`, at
    the first output whose keyed digest differs.
    """
    try:
        namespace = _load_solution(job["solution"], job["entry_point"], job["load_time_limit"])
    except BaseException as exc:
        send({"load": "failed", **_failure(exc)})
        return
    send({"load": "ok"})
    function = namespace[job["entry_point"]]
    stop_digests = job.get("stop_digests") or [None] * len(job["inputs"])
    for index, (args, limit) in enumerate(zip(job["inputs"], job["time_limits"], strict=True)):
        record, text, out = _call_one(function, args, limit, job.get("output_not_none", False))
        record["i"] = index
        if text is None:
            send(record)
            return
        stop_digest = keyed_digest(text)
        if job.get("report_stop_digests"):
            record["k"], record["f"] = stop_digest, is_floats(out)
        mismatch = stop_digests[index] is not None and stop_digest != stop_digests[index]
        if _wants_value(job["send"], stop_digests[index] is None or mismatch, text, out):
            record["v"] = text
        send(record)
        if mismatch and job.get("stop_on_mismatch", True):
            return
    send({"done": True})


def _wants_value(send: str, unsure: bool, text: str, out) -> bool:
    if send == "all":
        return True
    if send == "small":  # expected outputs: keep what comparisons with tolerance or re-checks may need
        return len(text) <= SMALL_VALUE_CHARS or is_floats(out)
    return unsure  # "unsure": samples send the values that their digest cannot settle


def _call_one(function, args, limit: float, output_not_none: bool):
    """(record, encoded output or None when the call failed, output).

    The limit is on CPU time (`t` reports CPU seconds), so that a loaded machine does not turn a
    correct solution into a timeout; sleeping or blocking is caught by the wall-time backstop.
    """
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    try:
        _arm(limit, cpu=True)
        try:
            out = function(*args)
        finally:
            _disarm()
        cpu = time.process_time() - start_cpu
        if cpu > limit or time.perf_counter() - start_wall > limit * WALL_BACKSTOP:
            return {"s": "timeout", "t": cpu}, None, None
        if output_not_none and type(out) is not bool:
            out = out is not None
        text = encode(out)
    except BaseException as exc:
        return _failure(exc), None, None
    return {"s": "ok", "t": cpu, "h": digest(text)}, text, out


def run_program(job: dict, send) -> None:
    """Run the solution, then the test code with the entry point guarded (HumanEval-style asserts)."""
    start = time.perf_counter()
    try:
        namespace = _load_solution(job["solution"], job["entry_point"], job["time_limit"])
        test_namespace = dict(namespace)
        test_namespace[job["entry_point"]] = plain_guard(namespace[job["entry_point"]])
        _arm(max(job["time_limit"] - (time.perf_counter() - start), 0.001))
        try:
            exec(compile(job["test"], "test.py", "exec"), test_namespace)
        finally:
            _disarm()
    except BaseException as exc:
        send(_failure(exc))
        return
    send({"s": "passed"})


def run_crux(job: dict, send) -> None:
    """CRUXEval's check `assert <output> == <generation>`, with both sides required to be plain values."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        _arm(job["time_limit"])
        try:
            exec(compile(job["code"], "solution.py", "exec"), namespace)
            namespace["f"] = plain_guard(namespace["f"])
            expected = require_plain(eval(job["output"], namespace))
            actual = require_plain(eval(job["generation"], namespace))
            equal = expected == actual
        finally:
            _disarm()
    except BaseException as exc:
        send(_failure(exc))
        return
    send({"s": "passed"} if equal else {"s": "failed"})


_MODES = {"diff": run_diff, "program": run_program, "crux": run_crux}


def main(data: dict, channel) -> None:
    """The job's entry (called by the job runtime): `data` is the eval job, each result one record.

    The runtime already gave the job its private channel and /dev/null as stdin; here stdout and stderr
    go to /dev/null too while the solution runs (what it prints is never a result, and a chatty solution
    must not fill the sandbox's stderr cap); stderr comes back for the harness's own failures.
    """
    send = channel.send  # bound before any untrusted code runs: replacing `channel.send` later changes nothing
    saved_stderr = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    try:
        _MODES[data["mode"]](data, send)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
