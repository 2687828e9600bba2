"""The job program (sandbox/job.py) that runs every eval job inside the sandbox (stdlib only, self-contained).

The host (evals/_jobs.py) sends this file's source as a job program and the eval job itself as the job's
data; the job runtime calls ``main(data, channel)``, which runs the untrusted solution and sends each result
as one record on the job's channel. Like the runtime (which imports `_blake2`, `_json`, `marshal`, `os` and
`sys`), it imports only builtin/C modules (`_blake2`, `_json`, `_signal`, `itertools`, `marshal`, `os`, `sys`,
`time`): `json`, `signal` and `hashlib` would pull in `re` and `enum` and cost more than the sandbox's whole
fork per job. (`decode` is the host's; it imports `json` when called.)

Threat model. The solution is model-written code that may be wrong in any way, print anything,
exit early, swallow exceptions, patch builtins, or return objects whose ``__eq__`` always says
True. It runs in this same process, so a deliberate attack on the harness's memory could forge
records; that is out of scope (the sandbox protects the host; the worst outcome is one wrong
verdict). What keeps naive or accidental gaming from passing:

- In ``diff`` mode the verdict is the host's: the harness never sees the expected outputs, only
  keyed digests of their digests for stopping early; it reports each output by an unkeyed digest (and,
  where needed, its value) produced by ``encode``, which accepts exact builtin types only, and a run of
  outputs that matched by one digest of their digests. Forging a passing record means producing the
  right outputs.
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

import _blake2
import _json
import _signal
import itertools
import marshal
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
DELAY_REFRESH_S = 0.01
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


def _items(value):
    """The encodings of a container's items. A container of one scalar type (what a large output usually is:
    HumanEval/130's ten million floats, Mbpp/255's tuples of floats) is mapped in C, with the exact text that
    `encode` gives each item, so that the encoding of a large output costs about what computing it did."""
    kinds = set(map(type, value))
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is float:
            total = sum(value)
            if total - total == 0.0:  # no NaN or infinity among them (nor an overflowing sum): plain reprs
                return map(float.__repr__, value)
        elif kind is int:
            if max(map(int.bit_length, value)) <= _DECIMAL_BITS:
                return map(int.__repr__, value)
        elif kind is str:
            return map(_json.encode_basestring_ascii, value)
        elif kind is bool:
            return map(_BOOL_TEXT.__getitem__, value)
    return map(encode, value)


_BOOL_TEXT = {True: "true", False: "false"}

_ENCODERS = {
    type(None): lambda value: "null",
    bool: lambda value: "true" if value else "false",
    int: _encode_int,
    float: _encode_float,
    str: _json.encode_basestring_ascii,
    list: lambda value: "[" + ",".join(_items(value)) + "]",
    tuple: lambda value: '{"t":[' + ",".join(_items(value)) + "]}",
    set: lambda value: '{"s":[' + ",".join(sorted(_items(value))) + "]}",
    frozenset: lambda value: '{"f":[' + ",".join(sorted(_items(value))) + "]}",
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
    """The unkeyed digest (of an output's `fingerprint`) by which outputs are compared with expected outputs."""
    return _blake2.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def keyed_digest(unkeyed: str) -> str:
    """The digest the harness uses to stop at a first mismatch (never the one verdicts rely on): of the
    unkeyed `digest`, so that a large output is hashed once. Knowing it does not give the unkeyed digest."""
    state = _STOP_STATE.copy()  # a copy of the keyed state: keying anew costs twice as much, per input
    state.update(unkeyed.encode("ascii"))
    return state.hexdigest()


_STOP_STATE = _blake2.blake2b(digest_size=16, key=STOP_KEY)


def run_digest(digests) -> str:
    """One digest for a run of outputs by their unkeyed digests, in input order: what the harness reports for
    the inputs whose outputs matched, and what the host computes from the expected digests to check them."""
    return _blake2.blake2b("".join(digests).encode("ascii"), digest_size=16).hexdigest()


def fingerprint(value) -> str:
    """What output digests are taken of: `encode(value)`, except that a list or tuple of scalars (ints and
    finite floats, or ints, strs, bools, None and bytes), or of lists or tuples of them, is the BLAKE2 digest
    of its marshal form (version 2: no back-references; each item with its type) under a tag `encode` never
    writes, other sequences of sequences are fingerprinted item by item, and a long str is the digest of its
    UTF-8 bytes. Two values have equal fingerprints exactly when they have equal encodings (finite doubles are
    equal bit for bit exactly when their reprs are), but a float's shortest repr costs far more than its 8
    bytes, and escaping a str more than hashing it: HumanEval/130's outputs are ten million numbers,
    HumanEval/15's strings of up to 50 MB, one of Mbpp/255's is 128 million strings in tuples (935 MB of
    text)."""
    kind = type(value)
    if kind is str:
        if len(value) <= _HASHED_STR_CHARS:
            return _json.encode_basestring_ascii(value)
        return '{"U":"' + _blake2.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest() + '"}'
    if kind is list or kind is tuple:
        kinds = set(map(type, value))
        items = value
        if len(kinds) == 1 and (list in kinds or tuple in kinds):  # one level down: Mbpp/255's tuples
            items = itertools.chain.from_iterable(value)
            kinds = set(map(type, items))
            items = itertools.chain.from_iterable(value)
        if kinds and (kinds <= _MARSHALLED or (kinds <= _NUMBERS and _finite(items))):
            packed = _blake2.blake2b(marshal.dumps(value, 2), digest_size=16).hexdigest()
            return ('{"L":"' if kind is list else '{"T":"') + packed + '"}'
        if len(kinds) == 1 and (list in kinds or tuple in kinds):
            body = ",".join(map(fingerprint, value))
            return "[" + body + "]" if kind is list else '{"t":[' + body + "]}"
    return encode(value)


# Marshal version 2 writes these canonically (no back-references, strs as UTF-8 whether interned or not);
# floats too, but for NaN, whose encoding is one text for many bit patterns.
_MARSHALLED = frozenset({int, str, bool, type(None), bytes})
_HASHED_STR_CHARS = 4096
_NUMBERS = frozenset({int, float})


def _finite(numbers) -> bool:
    try:
        total = sum(numbers)
    except OverflowError:  # an int too large for a float beside floats
        return False
    return total - total == 0


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
# The job runtime's timer (`time_limit`: wall clock, raising `JobTimeout`) bounds every check but `diff` mode's
# per-input calls, which have their own limits (`_InputTimer`).

def _arm(seconds: float) -> None:
    time_limit(seconds)


def _disarm() -> None:
    time_limit(0)


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


class _InputTimer:
    """Per-input limits that do not move with the machine's load.

    The limit is on CPU time (ITIMER_PROF), as the canonical times it derives from are. A call that
    sleeps or blocks uses no CPU, so a backstop bounds its *unloaded* elapsed time: wall time less the
    time the kernel kept it waiting for a CPU (`run_delay` in /proc/self/schedstat), at WALL_BACKSTOP x
    the limit. On a busy machine the wall clock runs on while a call waits for a CPU; that waiting
    is not the solution's doing and does not count. (Without schedstat, as in some containers, the
    backstop is plain wall time.) The sandbox's own limits on the whole job stay the last resort.

    Most inputs take microseconds, and so would the timer's own system calls if it made its seven per call:
    `run_delay` is read again only after DELAY_REFRESH_S (an older reading subtracts the waits since it
    too: a blocked call may get that much more time, never less), and a call's timers are not disarmed
    after it (the next call re-arms them; one that fires in between finds no call active), only by `stop`.
    """

    def __init__(self) -> None:
        try:
            self._fd = os.open("/proc/self/schedstat", os.O_RDONLY)
            self._run_delay()
        except (OSError, ValueError, IndexError):
            self._fd = None
        self.active, self.limit, self._wall0, self._delay0, self._delay_read = False, 0.0, 0.0, 0, -_INF
        # Installed once per job: a solution that replaces them is still caught after its call returns.
        _signal.signal(_signal.SIGPROF, self._on_cpu_limit)
        _signal.signal(_signal.SIGALRM, self._on_backstop)

    def _run_delay(self) -> int:
        if self._fd is None:
            return 0
        return int(os.pread(self._fd, 128, 0).split()[1])

    def elapsed(self) -> float:
        """Seconds since the call started, less those it spent waiting for a CPU."""
        return time.perf_counter() - self._wall0 - (self._run_delay() - self._delay0) / 1e9

    def _on_cpu_limit(self, signum, frame):
        if self.active:
            raise JobTimeout("the input's CPU-time limit ran out")

    def _on_backstop(self, signum, frame):
        if not self.active:
            return
        left = self.limit * WALL_BACKSTOP - self.elapsed()
        if left > 0.001:  # the call waited for a CPU meanwhile: that time is not its own
            _signal.setitimer(_signal.ITIMER_REAL, left)
            return
        raise JobTimeout("the input's time backstop ran out (blocked or sleeping)")

    def call(self, function, args, limit: float):
        """(output, CPU seconds, whether a limit was passed)."""
        self.limit = limit
        self._wall0 = time.perf_counter()
        if self._wall0 - self._delay_read > DELAY_REFRESH_S:
            self._delay0, self._delay_read = self._run_delay(), self._wall0
        start_cpu = time.process_time()
        self.active = True
        _signal.setitimer(_signal.ITIMER_PROF, limit)
        _signal.setitimer(_signal.ITIMER_REAL, limit * WALL_BACKSTOP)
        try:
            out = function(*args)
        finally:
            self.active = False  # a signal handled after this point changes nothing
        cpu = time.process_time() - start_cpu
        # A solution that swallowed the signal (or replaced its handler) and returned late still timed out.
        late = cpu > limit or (time.perf_counter() - self._wall0 > limit * WALL_BACKSTOP
                               and self.elapsed() > limit * WALL_BACKSTOP)
        return out, cpu, late

    def stop(self) -> None:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _signal.setitimer(_signal.ITIMER_PROF, 0)


FLUSH_ROWS = 512
FLUSH_SECONDS = 0.05
FLUSH_CHARS = 1 << 20


def run_diff(job: dict, send) -> None:
    """Call the entry point on each input and report each output (EvalPlus's differential tests).

    Every output is reported by the digest `h` of its `fingerprint`; its encoded value travels only
    where the host needs it, so a 100 MB output costs a hash, not a transfer. `stop_digests` are keyed
    digests (`k`, reported when computing expected outputs) of the expected outputs' fingerprints; knowing
    them does not let a solution forge `h`, which is unkeyed and never sent to the sandbox. An output whose
    keyed digest matches is identical to the expected one; one that differs is sent (where `values` says
    the host can use it) and, at an input compared exactly, stops the run if `stop_on_mismatch`. The run
    also stops at the first exception, timeout or unserializable output.

    Outputs travel in batches, `{"o": [[i, t, h, v], ...], "m": [[first, last, r], ...]}` (t: CPU seconds; v:
    the encoded value or null; when computing expected outputs also k, f (float output) and e (CPU seconds of
    encoding and hashing); "m", when present: runs of inputs whose keyed digests matched, each reported by
    the `run_digest` r of their unkeyed digests, which the host checks against the expected ones). Batches
    are flushed every FLUSH_ROWS inputs, FLUSH_SECONDS or FLUSH_CHARS: one frame per input was most of the
    cost of a task with many quick inputs, and a row per matched input most of what was left. A failure is
    one record `{"i", "s", ...}` after the batch before it. A job that dies loses at most its unsent batch:
    the host then reports the first input without a result.
    """
    try:
        namespace = _load_solution(job["solution"], job["entry_point"], job["load_time_limit"])
    except BaseException as exc:
        send({"load": "failed", **_failure(exc)})
        return
    send({"load": "ok"})
    timer, batch = _InputTimer(), _Batch(send)
    try:
        last = _diff_inputs(job, namespace[job["entry_point"]], timer, batch)
    finally:
        timer.stop()
    batch.flush()
    if last is not None:
        send(last)


def _diff_inputs(job: dict, function, timer: _InputTimer, batch: "_Batch") -> dict | None:
    """run_diff's loop over the inputs: the record that ends the job's report (`done` after the last input, or
    the failure of the input it stopped at), or None when it stopped at a mismatch."""
    inputs, limits = job["inputs"], job["time_limits"]
    count = len(inputs)
    stop_digests = job.get("stop_digests") or [None] * count
    tolerant = job.get("tolerant") or [False] * count  # a mismatch there is judged by value; the run goes on
    values = job.get("values") or [True] * count  # whether the host can use the value of a mismatch
    send_mode, report_stop = job["send"], job.get("report_stop_digests", False)
    output_not_none, stop_on_mismatch = job.get("output_not_none", False), job.get("stop_on_mismatch", True)
    for index in range(count):
        try:
            out, cpu, late = timer.call(function, inputs[index], limits[index])
            if late:
                raise JobTimeout("late")
            encode_start = time.process_time()
            if output_not_none and type(out) is not bool:
                out = out is not None
            print_ = fingerprint(out)
        except BaseException as exc:
            return {"i": index, **_failure(exc)}
        unkeyed = digest(print_)
        stop_digest = keyed_digest(unkeyed)
        if stop_digests[index] is not None and stop_digest == stop_digests[index]:
            batch.match(index, unkeyed)
        else:
            mismatch = stop_digests[index] is not None
            text, floats = None, send_mode != "unsure" and is_floats(out)
            # Expected outputs ("small") keep the values that comparisons with a tolerance or a special oracle
            # may need: floats, and anything whose encoding is small; samples ("unsure") send what their digest
            # cannot settle, where the host can use it.
            if send_mode == "all" or (send_mode == "small" and (floats or (len(print_) <= SMALL_VALUE_CHARS
                                                                         and not _surely_large(out)))) \
                    or (send_mode == "unsure" and values[index]):
                try:
                    text = encode(out)
                except BaseException as exc:
                    return {"i": index, **_failure(exc)}
                if send_mode == "small" and not floats and len(text) > SMALL_VALUE_CHARS:
                    text = None
            row = [index, cpu, unkeyed, text]
            if report_stop:
                row += [stop_digest, floats, time.process_time() - encode_start]
            batch.row(row, len(text) if text else 0)
            if mismatch and stop_on_mismatch and not tolerant[index]:
                return None
        if batch.due():
            batch.flush()
    return {"done": True}


class _Batch:
    """The outputs not sent yet: rows, and the run of matched inputs that began at `first`."""

    def __init__(self, send) -> None:
        self.send, self.rows, self.runs, self.first, self.matched = send, [], [], 0, []
        self.chars, self.flushed = 0, time.perf_counter()

    def match(self, index: int, unkeyed: str) -> None:
        if not self.matched:
            self.first = index
        self.matched.append(unkeyed)

    def row(self, row: list, chars: int) -> None:
        self._close_run()
        self.rows.append(row)
        self.chars += chars

    def _close_run(self) -> None:
        if self.matched:
            self.runs.append([self.first, self.first + len(self.matched) - 1, run_digest(self.matched)])
            self.matched = []

    def due(self) -> bool:
        return (len(self.rows) + len(self.matched) >= FLUSH_ROWS or self.chars >= FLUSH_CHARS
                or time.perf_counter() - self.flushed >= FLUSH_SECONDS)

    def flush(self) -> None:
        self._close_run()
        if self.rows or self.runs:
            self.send({"o": self.rows, "m": self.runs} if self.runs else {"o": self.rows})
        self.rows, self.runs, self.chars, self.flushed = [], [], 0, time.perf_counter()


def _surely_large(value) -> bool:
    """Whether `value`'s encoding surely passes SMALL_VALUE_CHARS (each scalar takes a character and a comma),
    known without building it: Mbpp/255's largest output is 935 MB of text, 16 s to encode."""
    if type(value) is str:
        return len(value) > SMALL_VALUE_CHARS
    if type(value) is not list and type(value) is not tuple:
        return False
    count = len(value)
    if value and set(map(type, value)) <= {list, tuple}:
        count += sum(map(len, value))
    return count > SMALL_VALUE_CHARS // 2 + 1


def output_records(records: list, count: int) -> dict:
    """The host's reading of a `diff` job's records for its `count` inputs: input index -> {"s", "t", "h", "v"?,
    "k"?, "f"?, "e"?}, {"s": "ok", "r": [first, last, run digest]} for an input of a matched run (the host
    checks the run's digest), or a failure {"i", "s", "m"?}. What the code under test sent through the
    harness's `send` is records too: rows, runs and failures of another shape, or runs of inputs the job does
    not have, are left out (those inputs have no result)."""
    outputs = {}
    for record in records:
        if not isinstance(record, dict):
            continue
        if "o" in record:
            rows, runs = record["o"], record.get("m", [])
            for row in rows if type(rows) is list else ():
                if type(row) is not list or len(row) not in (4, 7) or type(row[0]) is not int:
                    continue
                entry = {"s": "ok", "t": row[1], "h": row[2]}
                if row[3] is not None:
                    entry["v"] = row[3]
                if len(row) > 4:
                    entry["k"], entry["f"], entry["e"] = row[4], row[5], row[6]
                outputs[row[0]] = entry
            for run in runs if type(runs) is list else ():
                if type(run) is list and len(run) == 3 and type(run[0]) is int and type(run[1]) is int \
                        and type(run[2]) is str and 0 <= run[0] <= run[1] < count:
                    entry = {"s": "ok", "r": run}
                    outputs.update(dict.fromkeys(range(run[0], run[1] + 1), entry))
        elif "i" in record and record.get("s") != "ok" and type(record.get("s")) is str:
            outputs[record["i"]] = record
    return outputs


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
