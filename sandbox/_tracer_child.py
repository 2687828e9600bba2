"""The half of the tracer that runs inside the sandbox: a job program (sandbox/job.py). Standard library only.

The host runs this file's source as a job: `main(data, channel)` gets the rows and the options, sends a
first ``{"ready": ...}`` record (before any traced code runs, so the host can tell a tracer that never
started from a row that killed the process), then one record per row, in order. Each row's code is loaded
as a module (its module-level code runs untraced), then the row's call expression is evaluated in that
module's namespace under a line tracer that records the events of frames whose code comes from the
row's code, nothing else. The traced program's own stdout and stderr are captured per row; the job
runtime owns the result channel (keyed frames on a private fd), so nothing the program prints or writes
can pass for a result: at most it breaks the channel, which the host reports for the row.

On Python >= 3.12 the tracer uses `sys.monitoring` (foreign code is DISABLEd after its first event);
on 3.11 it uses `sys.settrace` with a local trace function only on the traced code's frames. No
``from __future__`` import: the job runtime's import line comes before this source.
"""

import atexit
import io
import json
import linecache
import re
import signal
import sys
import time
import types
from bisect import bisect_right
from itertools import chain
from opcode import opmap  # dis's table; `dis` itself would import more than the tracer needs
from operator import is_

DEFAULT_OPTIONS = {
    "max_events": 10_000,
    "max_bytes": 4_000_000,
    "max_depth": None,
    "repr_chars": 1_000,
    "repr_timeout_s": 0.25,
    "call_timeout_s": 5.0,
    "output_chars": 65_536,
    "engine": "auto",
    "states_only": False,
}
# Results are plain dicts/lists/str/int built here: no cycles to check (and the check is costly).
_ENCODER = json.JSONEncoder(check_circular=False)
# For a result whose locals have a name that is no string (a class body's namespace can hold any key).
_LENIENT_ENCODER = json.JSONEncoder(check_circular=False, skipkeys=True)
# A held channel (main) writes what it holds this often.
_FLUSH_S = 0.02
# Rough per-event and per-local overheads of the serialized form, for the byte cap.
_EVENT_OVERHEAD = 40
_LOCAL_OVERHEAD = 8


class _ReprTimeout(BaseException):
    """One `__repr__` ran past its time budget."""


class _RowTimeout(BaseException):
    """The row's call ran past its time budget. A BaseException, so `except Exception` cannot swallow it."""


# ----------------------------------------------------------------------------------------- alarm


class Alarm:
    """One SIGALRM interval timer shared by the row deadline and the per-repr budgets.

    Entries are [deadline, exception type]; the earliest deadline is armed. A repr budget fires once;
    a row deadline keeps firing every 50 ms until the row ends, in case the program swallows it.
    The job runtime's `time_limit` is one single-shot timer, which can do neither; the tracer's job
    arms no other timer, so this is still the process's only SIGALRM user.
    """

    def __init__(self) -> None:
        self._entries: list[list] = []
        self._armed: float | None = None  # when the armed timer fires (monotonic); None: disarmed
        signal.signal(signal.SIGALRM, self._fire)
        # pop() leaves the timer armed; at interpreter exit SIGALRM's default action (death) returns, so a
        # process that used the tracer in-process and exits normally disarms first. The job leaves by os._exit
        # after main() disarmed.
        atexit.register(self.disarm)

    def push(self, seconds: float, exc_type: type[BaseException]) -> list:
        entry = [time.monotonic() + seconds, exc_type]
        self._entries.append(entry)
        if self._armed is None or entry[0] < self._armed:
            self._arm()
        return entry

    def pop(self, entry: list) -> None:
        # Lazily: the timer stays armed for the entry that went away; it then fires early, finds nothing due
        # and arms for what is left (or disarms). Re-arming here cost two setitimer calls per row, a tenth of
        # a short row's time in the tracer's child.
        entries = self._entries
        if entries and entries[-1] is entry:  # the row's own, pushed last: the usual case
            entries.pop()
        else:
            self._entries = [e for e in entries if e is not entry]

    def disarm(self) -> None:
        """No entry left and no timer armed (the job's end)."""
        self._entries = []
        self._arm()

    def _arm(self) -> None:
        if not self._entries:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._armed = None
            return
        now = time.monotonic()
        delay = max(min(e[0] for e in self._entries) - now, 0.001)
        signal.setitimer(signal.ITIMER_REAL, delay)
        self._armed = now + delay

    def _fire(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        due = [e for e in self._entries if e[0] <= now + 0.001]
        if not due:
            self._arm()
            return
        entry = due[0]  # the outermost: a row deadline wins over a repr budget
        if entry[1] is _ReprTimeout:
            self._entries.remove(entry)
        else:
            entry[0] = now + 0.05
        self._arm()
        raise entry[1]()


# ------------------------------------------------------------------------------------- safe repr

_SCALARS = frozenset({int, float, bool, complex, type(None)})
_INLINE_SCALARS = frozenset({float, bool, type(None)})
_SMALL_INT = 10**15
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})
_EMPTY = {list: "[]", tuple: "()", dict: "{}", set: "set()", frozenset: "frozenset()"}
_BRACKETS = {list: ("[", "]"), tuple: ("(", ")"), dict: ("{", "}"), set: ("{", "}"), frozenset: ("frozenset({", "})")}
_RECURSIVE = {list: "[...]", tuple: "(...)", dict: "{...}"}
_MAX_NESTING = 100
# Containers of at most this many elements in all (nested ones included) go to the C repr.
_FAST_BUDGET = 256
# Leaves the C repr renders without running user code.
_TEXT = frozenset({str, bytes})
_LEAVES = _SCALARS | _TEXT
_LEAVES_AND_CONTAINERS = _LEAVES | _CONTAINERS


_STR = frozenset({str})
_SCALARS_OR_STR = _SCALARS | _STR
_SEQUENCES = frozenset({list, tuple, set, frozenset})
_IMMUTABLE_SEQUENCES = frozenset({tuple, frozenset})
_SLICEABLE = frozenset({list, tuple})


_NOT_SMALL, _SMALL, _SMALL_IMMUTABLE_ITEMS = 0, 1, 2


def _small_builtin(value, max_items: int = _FAST_BUDGET) -> int:
    """Whether a container is one of the common small shapes whose C repr is surely short and runs no
    user code (scalars and short strings, a dict of those, a sequence of sequences of scalars), checked
    at C speed; _SMALL_IMMUTABLE_ITEMS when its items are immutable too."""
    if len(value) > max_items:
        return _NOT_SMALL
    if type(value) is dict:
        small = _plain_leaves(value) and _plain_leaves(value.values())
        return _SMALL_IMMUTABLE_ITEMS if small else _NOT_SMALL
    kinds = set(map(type, value))
    if kinds <= _SCALARS or (kinds <= _STR and sum(map(len, value)) <= 32 * _FAST_BUDGET):
        return _SMALL_IMMUTABLE_ITEMS
    if (
        kinds <= _SEQUENCES
        and sum(map(len, value)) <= _FAST_BUDGET
        and _SCALARS.issuperset(map(type, chain.from_iterable(value)))
    ):
        return _SMALL_IMMUTABLE_ITEMS if kinds <= _IMMUTABLE_SEQUENCES else _SMALL
    return _NOT_SMALL


def _plain_leaves(items) -> bool:
    kinds = set(map(type, items))
    if kinds <= _SCALARS:
        return True
    return kinds <= _SCALARS_OR_STR and _short_strings(items)


def _short_strings(items) -> bool:
    return sum(len(item) for item in items if type(item) is str) <= 32 * _FAST_BUDGET


def fast_container_repr(value, cap: int) -> tuple[str | None, tuple | None]:
    """(repr cut to cap, shadow items) of a builtin container in a common safe shape, at C speed.

    A list or tuple longer than cap/3 items is rendered from its head only: every item adds at least
    three characters, so the head's repr already fills the cap and is the full repr's prefix. The
    shadow items (None when some items are mutable) let the caller reuse the text while the container
    holds the same items. (None, None) when the container needs the careful path.
    """
    head = cap // 3 + 1
    view = value[:head] if type(value) in _SLICEABLE and len(value) > head else value
    verdict = _small_builtin(view, max(head, _FAST_BUDGET))
    if not verdict:
        return None, None
    text = repr(view)[:cap]
    if verdict != _SMALL_IMMUTABLE_ITEMS:
        return text, None
    if type(value) is dict:
        return text, (tuple(value), tuple(value.values()), False)
    return text, (tuple(view), None, view is not value)


def same_items(value, shadow: tuple) -> bool:
    """Same items by identity and order as when the shadow was taken (for a head: the same head)."""
    items, values, head_only = shadow
    if values is not None:
        return len(value) == len(items) and all(map(is_, value, items)) and all(map(is_, value.values(), values))
    if head_only:
        return len(value) > len(items) and all(map(is_, value, items))
    return len(value) == len(items) and all(map(is_, value, items))


def diff_locals(names: dict, current: dict, shadows: dict, size: int, cap: int, slow, same) -> tuple:
    """(delta, removed names or None, new size): the locals in `names` whose repr differs from `current`'s.

    `current` (name -> repr) and `shadows` (see Recorder) are updated in place; `size` is the snapshot's size
    as the byte cap counts it. Scalars, strings up to `cap` and short flat lists and tuples of scalars are
    rendered here; `slow(item)` renders the rest as (text, shadow items or None), `same(item, items)` checks a
    shadow that is not a flat sequence. The C form (sandbox/_semcoder_speedups.c) does exactly this.
    """
    delta = {}
    for name, item in names.items():
        if type(name) is not str:  # a class body's namespace may hold any key; a trace shows names only
            continue
        shadow = shadows.get(name)
        if shadow is not None and shadow[0] is item:
            items = shadow[1]
            if items is None:
                continue
            if items[1] is None and not items[2] and type(item) in _SLICEABLE:  # a whole flat sequence
                if len(item) == len(items[0]) and all(map(is_, item, items[0])):
                    continue
            elif same(item, items):
                continue
        kind_of = type(item)
        if kind_of in _INLINE_SCALARS or (kind_of is int and -_SMALL_INT < item < _SMALL_INT):
            text = repr(item)
            shadows[name] = (item, None)
        elif kind_of is str and len(item) <= cap:
            text = repr(item)[:cap]
            shadows[name] = (item, None)
        elif kind_of in _SLICEABLE and len(item) <= _FAST_BUDGET and _SCALARS.issuperset(map(type, item)):
            text = repr(item)[:cap]  # the commonest container: a short flat list or tuple of scalars
            shadows[name] = (item, (tuple(item), None, False))
        else:
            text, items = slow(item)
            if items is None:
                shadows.pop(name, None)
            else:
                shadows[name] = (item, items)
        old = current.get(name)
        if old != text:
            delta[name] = text
            current[name] = text
            size += len(text) - (len(old) if old is not None else -len(name) - _LOCAL_OVERHEAD)
    removed = None
    if len(current) > len(names):
        removed = [name for name in current if name not in names]
        for name in removed:
            size -= len(current.pop(name)) + len(name) + _LOCAL_OVERHEAD
            shadows.pop(name, None)
    return delta, removed, size


try:  # the C forms, when the host shipped them built for this interpreter (sandbox/tracer.py); the same results
    from _semcoder_speedups import Tracer as _CTracer
    from _semcoder_speedups import diff_locals as _diff_locals
    from _semcoder_speedups import encode_record as _encode_record
except ImportError:
    _diff_locals, _CTracer, _encode_record = diff_locals, None, None


class SafeRepr:
    """repr() that never raises, never runs long and never returns more than `cap` characters.

    Builtin values are rendered without calling user code (small ones by the C repr, large ones by a
    writer that stops at the cap, so the text is the real repr's prefix); anything else gets the real
    repr() under a time budget. A type whose repr timed out once is not asked again.
    """

    def __init__(self, cap: int, timeout_s: float, alarm: Alarm) -> None:
        self.cap = cap
        self._timeout_s = timeout_s
        self._alarm = alarm
        self._slow_types: set[type] = set()

    def __call__(self, value: object) -> str:
        kind = type(value)
        try:
            if kind in _SCALARS:
                return repr(value)[: self.cap]
            if kind is str or kind is bytes:
                return self._text(value)
            if kind in _CONTAINERS:
                text = fast_container_repr(value, self.cap)[0]
                if text is not None:
                    return text
                if self._fits(value, _FAST_BUDGET) >= 0:
                    return repr(value)[: self.cap]
                parts: list[str] = []
                self._write(value, parts, [self.cap], set())
                return "".join(parts)[: self.cap]
            return self._guarded(value)
        except _RowTimeout:
            raise
        except BaseException as exc:
            return f"<repr failed: {type(exc).__name__}>"

    def _text(self, value: str | bytes) -> str:
        if len(value) <= self.cap:
            return repr(value)[: self.cap]
        # The quote character depends on the whole value; add a probe character that forces the
        # same choice on the prefix, so the result is a prefix of the full repr.
        quote, apostrophe = ('"', "'") if type(value) is str else (b'"', b"'")
        uses_double = apostrophe in value and quote not in value
        probe = apostrophe if uses_double else quote
        return repr(value[: self.cap] + probe)[: self.cap]

    def _fits(self, value: object, budget: int) -> int:
        """Budget left if the C repr of `value` is short and calls no user code, else -1.

        Each level's element types are collected at C speed; only nested containers and strings are
        walked (a string costs len/32 of the budget).
        """
        budget -= len(value)
        if budget < 0:
            return -1
        groups = (value, value.values()) if type(value) is dict else (value,)
        kinds = set()
        for group in groups:
            kinds.update(map(type, group))
        if not kinds <= _LEAVES_AND_CONTAINERS:
            return -1
        if kinds & _TEXT:
            for group in groups:
                budget -= sum(len(item) for item in group if type(item) in _TEXT) >> 5
        if kinds <= _LEAVES or budget < 0:
            return budget
        for group in groups:
            for item in group:
                if type(item) in _CONTAINERS:
                    budget = self._fits(item, budget)
                    if budget < 0:
                        return -1
        return budget

    def _write(self, value: object, parts: list[str], left: list[int], active: set[int]) -> None:
        kind = type(value)
        if kind not in _CONTAINERS:
            self._emit(self(value), parts, left)
            return
        if not value:
            self._emit(_EMPTY[kind], parts, left)
            return
        if id(value) in active:
            self._emit(_RECURSIVE[kind], parts, left)
            return
        if len(active) >= _MAX_NESTING:  # deeper than any useful prefix: stop instead of recursing on
            self._emit("...", parts, left)
            left[0] = 0
            return
        active.add(id(value))
        opening, closing = _BRACKETS[kind]
        self._emit(opening, parts, left)
        for index, item in enumerate(value.items() if kind is dict else value):
            if left[0] <= 0:
                break
            if index:
                self._emit(", ", parts, left)
            if kind is dict:
                self._write(item[0], parts, left, active)
                self._emit(": ", parts, left)
                item = item[1]
            self._write(item, parts, left, active)
        else:
            self._emit("," + closing if kind is tuple and len(value) == 1 else closing, parts, left)
        active.discard(id(value))

    @staticmethod
    def _emit(text: str, parts: list[str], left: list[int]) -> None:
        parts.append(text)
        left[0] -= len(text)

    def _guarded(self, value: object) -> str:
        kind = type(value)
        if kind in self._slow_types:
            return "<repr failed: timeout>"
        entry = self._alarm.push(self._timeout_s, _ReprTimeout)
        try:
            text = repr(value)
        except _ReprTimeout:
            self._slow_types.add(kind)
            return "<repr failed: timeout>"
        finally:
            self._alarm.pop(entry)
        return text[: self.cap]

    def exception_text(self, exc: BaseException) -> str:
        """'TypeName: message', with a message that cannot raise or run long."""
        if isinstance(exc, _RowTimeout):
            return "TimeoutError: the call did not finish within its time limit"
        try:
            if type(exc).__module__ == "builtins":
                message = str(exc)
            else:
                entry = self._alarm.push(self._timeout_s, _ReprTimeout)
                try:
                    message = str(exc)
                finally:
                    self._alarm.pop(entry)
        except _RowTimeout:
            raise
        except BaseException as failure:
            message = f"<str failed: {type(failure).__name__}>"
        return f"{type(exc).__name__}: {message[: self.cap]}"


# -------------------------------------------------------------------------------------- recorder


class Recorder:
    """Events of the traced frames inside the event and byte caps.

    Each event carries its frame's locals as a delta against the previous event of the same
    activation (the names whose repr changed, and the names that disappeared); the host rebuilds the
    full snapshots. The byte cap counts the full snapshots, i.e. what the host will hold.
    `stack` holds [id(frame), activation, depth, current reprs, their size, shadows, fresh] of the
    traced frames now running; an activation is one entry into a frame (a generator resumed is a new
    one); fresh is true between its call event and its next event.
    A shadow is (value, None) for a local holding an immutable scalar or string, and (container, its
    items) for a container whose items are immutable: while the local holds the same value (and the
    container the same items), its repr is reused instead of recomputed.
    """

    def __init__(self, options: dict, reprer: SafeRepr) -> None:
        self.events: list[tuple] = []
        self.activations: list[tuple[str, int]] = []  # (qualified name, depth) by activation number
        self.stack: list[list] = []
        self.truncated = False
        self.returned: tuple = (_noop, None, "")  # the last depth-1 return: (value, repr, function name)
        self.halt = _noop
        self._reprer = reprer
        self._cap = reprer.cap
        self._max_events = options["max_events"]
        self._max_bytes = options["max_bytes"]
        self._max_depth = options["max_depth"] or sys.maxsize
        self._bytes = 0
        # A format that shows only the states (the JSON lines) never reads an inner frame's returned value or an
        # exception event's text: they are not made. The depth-1 return's repr still is: it is the call's.
        self._values = not options["states_only"]
        cap = reprer.cap

        def slow(item):
            """diff_locals' renderer for what is not a scalar, a short string or a short flat list or tuple."""
            if type(item) in _CONTAINERS:
                text, items = fast_container_repr(item, cap)
                return (reprer(item) if text is None else text), items
            return reprer(item), None

        self._slow = slow

    def enter(self, frame: types.FrameType) -> bool:
        """A traced frame starts or resumes; False when it is too deep to trace."""
        depth = len(self.stack) + 1
        if depth > self._max_depth or self.truncated:
            return False
        self.stack.append([id(frame), len(self.activations), depth, {}, 0, {}, False])
        self.activations.append((frame.f_code.co_qualname, depth))
        self.add("call", frame, frame.f_lineno, None)
        self.stack[-1][6] = True
        return True

    def leave(self, frame: types.FrameType, value: object, by_exception: bool) -> None:
        """The top traced frame returns, yields, or ends by an exception (value None then)."""
        depth = self.stack[-1][2]
        text = None if by_exception or (depth > 1 and not self._values) else self._reprer(value)
        self.add("return", frame, frame.f_lineno, text)
        self.stack.pop()
        if depth == 1:
            self.returned = (value, text, frame.f_code.co_name)

    def exception(self, frame: types.FrameType, exc: BaseException) -> None:
        self.add("exception", frame, frame.f_lineno, self._reprer.exception_text(exc) if self._values else None)

    def is_current(self, frame: types.FrameType) -> bool:
        return bool(self.stack) and self.stack[-1][0] == id(frame)

    def add(self, kind: str, frame: types.FrameType, lineno: int, value: str | None) -> None:
        """Record one event of the top traced frame (hot path: kept flat)."""
        if self.truncated:
            return
        top = self.stack[-1]
        if top[6]:
            top[6] = False
            if kind == "line":  # nothing ran since the call event: the locals are the arguments, unchanged
                self._append(kind, frame, lineno, {}, None, top, value)
                return
        delta, removed, top[4] = _diff_locals(frame.f_locals, top[3], top[5], top[4], self._cap, self._slow, same_items)
        self._append(kind, frame, lineno, delta, removed, top, value)

    def _append(self, kind: str, frame, lineno: int, delta: dict, removed, top: list, value: str | None) -> None:
        self._bytes += top[4] + _EVENT_OVERHEAD + (len(value) if value else 0)
        if len(self.events) >= self._max_events or self._bytes > self._max_bytes:
            self.truncated = True
            self.halt()
            return
        if removed is None and value is None:
            self.events.append((kind, lineno, delta, top[1]))
        else:
            self.events.append((kind, lineno, delta, top[1], removed, value))


def _noop() -> None:
    pass


# --------------------------------------------------------------------------------------- engines


class SettraceEngine:
    """Python 3.11: a global trace function that hands a local one only to the traced code's frames.

    Both are closures over the row's recorder: the hot path does no attribute lookups.
    """

    # The opcodes a frame leaves by without an exception (3.12 adds RETURN_CONST), for when this engine runs on 3.12+.
    _NORMAL_EXITS = frozenset(
        {opmap["RETURN_VALUE"], opmap.get("RETURN_CONST", -1), opmap.get("YIELD_VALUE", -1)}
    )

    def __init__(self) -> None:
        self._on_call = None
        self._tracer = None

    def prepare(self, filename: str) -> None:
        """The row `filename` is about to be loaded (nothing to do here: settrace is off until start)."""

    def attach(self, filename: str, recorder: Recorder) -> None:
        recorder.halt = self.stop
        self._on_call, on_event = _settrace_callbacks(filename, recorder, self._NORMAL_EXITS, _CTracer is None)
        # Where it was built: a C trace function that records calls, lines and returns itself (the rest: on_event).
        self._tracer = None if _CTracer is None else _CTracer(filename, recorder, on_event, _RowTimeout, same_items,
                                                              self._NORMAL_EXITS, diff_locals)

    def start(self) -> None:
        if self._tracer is not None:
            self._tracer.start()
        else:
            sys.settrace(self._on_call)

    def stop(self) -> None:
        sys.settrace(None)


_RESUME, _YIELD_VALUE = opmap.get("RESUME", -1), opmap.get("YIELD_VALUE", -1)


def _settrace_callbacks(filename: str, recorder: Recorder, normal_exits: frozenset, with_call: bool = True):
    """The global trace function (None unless `with_call`: the C tracer has its own) and the local one."""
    add, leave, exception = recorder.add, recorder.leave, recorder.exception
    resume, yield_value = _RESUME, _YIELD_VALUE
    exit_opcodes: dict[types.CodeType, bytes] = {}

    def on_event(frame, event, arg):
        try:
            if event == "line":
                add("line", frame, frame.f_lineno, None)
            elif event == "return":
                code = frame.f_code
                opcodes = exit_opcodes.get(code) or exit_opcodes.setdefault(code, code.co_code)
                lasti = frame.f_lasti
                op = opcodes[lasti]
                if op == resume and lasti >= 2 and opcodes[lasti - 2] == yield_value:
                    op = yield_value  # 3.13 reports a yield's return event at the RESUME after it
                leave(frame, arg, op not in normal_exits)
            elif event == "exception":
                exception(frame, arg[1])
        except _RowTimeout:
            raise
        except BaseException:
            pass
        return on_event

    if not with_call:
        return None, on_event
    enter = recorder.enter

    def on_call(frame, event, arg):
        if frame.f_code.co_filename != filename:
            return None
        try:
            if enter(frame):
                return on_event
        except _RowTimeout:
            raise
        except BaseException:  # a tracer failure must never change the program's result
            pass
        return None

    return on_call, on_event


class MonitoringEngine:
    """Python >= 3.12: sys.monitoring callbacks; foreign code's locations are DISABLEd once seen.

    One instance serves every row of a process, so the DISABLEd locations stay a cache. The events are set once
    for the process, not per row: changing them makes CPython instrument again every code object that runs next
    (the tracer's own, the job runtime's, json's), which cost a fifth of a batch when done at every row's start
    and end. So the callbacks record only between start() and stop(), and the row that is loading (prepare())
    is never taken for foreign code. A backward jump within one line (an inlined comprehension's loop, a
    one-line `for`/`while`) gets a line event, as sys.settrace gives one there (3.12's legacy tracing does the
    same from JUMP events): the two engines give the same trace, and 3.12 shows each iteration of such a loop
    as 3.11 does. Forward jumps, and backward ones to another line (the LINE event covers those), are DISABLEd
    where they are.
    """

    def __init__(self) -> None:
        mon = sys.monitoring
        free = [tool for tool in range(6) if mon.get_tool(tool) is None]
        if not free:
            raise RuntimeError("no free sys.monitoring tool id")
        self._tool = free[-1]
        mon.use_tool_id(self._tool, "semcoder-tracer")
        events = mon.events
        self._callbacks = {
            events.PY_START: self._on_start,
            events.PY_RESUME: self._on_start,
            events.PY_THROW: self._on_throw,
            events.LINE: self._on_line,
            events.PY_RETURN: self._on_return,
            events.PY_YIELD: self._on_return,
            events.PY_UNWIND: self._on_unwind,
            events.RAISE: self._on_raise,
            events.JUMP: self._on_jump,
        }
        self._lines: dict[types.CodeType, tuple[list[int], list[int | None]]] = {}  # code -> _line_ranges
        for event, callback in self._callbacks.items():
            mon.register_callback(self._tool, event, callback)
        self._mask = 0
        for event in self._callbacks:
            self._mask |= event
        self._filename: str | None = None  # the row whose code may run now: never DISABLEd as foreign
        self._rec: Recorder | None = None
        self._on = False  # between start() and stop(): events are recorded
        self._set = False  # the events are set (at the first start(), then for good unless a row halts)

    def prepare(self, filename: str) -> None:
        """The row `filename` is about to be loaded: its code runs from now on (module level, untraced)."""
        self._filename = filename

    def attach(self, filename: str, recorder: Recorder) -> None:
        if filename != self._filename:
            # Code loaded without prepare() (a caller that loads rows itself) ran while other code was the row's:
            # its locations may have been DISABLEd as foreign. Enable every location again (all code is then
            # instrumented anew: the cost that prepare() saves).
            self._filename = filename
            if self._set:
                sys.monitoring.restart_events()
        self._rec = recorder
        recorder.halt = self.halt

    def start(self) -> None:
        self._on = True
        if not self._set:
            sys.monitoring.set_events(self._tool, self._mask)
            self._set = True

    def stop(self) -> None:
        self._on = False

    def halt(self) -> None:
        """A cap was hit: nothing more of this row is recorded. The events go off (set again at the next row's
        start: one more instrumentation per truncated row) rather than call back for every event left."""
        self._on = False
        sys.monitoring.set_events(self._tool, 0)
        self._set = False

    def _on_start(self, code, offset):
        if code.co_filename != self._filename:
            return sys.monitoring.DISABLE
        if self._on:
            self._enter(sys._getframe(1))
        return None

    def _on_throw(self, code, offset, exc):
        if self._on and code.co_filename == self._filename:
            self._enter(sys._getframe(1))

    def _enter(self, frame) -> None:
        try:
            self._rec.enter(frame)
        except _RowTimeout:
            raise
        except BaseException:
            pass

    def _on_line(self, code, lineno):
        if code.co_filename != self._filename:
            return sys.monitoring.DISABLE
        return self._record_line(lineno)

    def _record_line(self, lineno):
        """A line event for the frame of the callback calling this (two up from here)."""
        if not self._on:
            return None
        try:
            frame = sys._getframe(2)
            if self._rec.is_current(frame):
                self._rec.add("line", frame, lineno, None)
        except _RowTimeout:
            raise
        except BaseException:
            pass
        return None

    def _on_jump(self, code, offset, destination):
        if destination > offset or code.co_filename != self._filename:
            return sys.monitoring.DISABLE
        ranges = self._lines.get(code)
        if ranges is None:
            ranges = self._lines[code] = _line_ranges(code)
        starts, lines = ranges
        line = lines[bisect_right(starts, destination) - 1]
        if line is None or line != lines[bisect_right(starts, offset) - 1]:
            return sys.monitoring.DISABLE
        return self._record_line(line)

    def _on_return(self, code, offset, value):
        if code.co_filename != self._filename:
            return sys.monitoring.DISABLE
        if self._on:
            self._leave(value, by_exception=False)
        return None

    def _on_unwind(self, code, offset, exc):
        if self._on and code.co_filename == self._filename:
            self._leave(None, by_exception=True)

    def _leave(self, value, by_exception: bool) -> None:
        try:
            frame = sys._getframe(2)
            if self._rec.is_current(frame):
                self._rec.leave(frame, value, by_exception)
        except _RowTimeout:
            raise
        except BaseException:
            pass

    def _on_raise(self, code, offset, exc):
        if not self._on or code.co_filename != self._filename:
            return
        try:
            frame = sys._getframe(1)
            if self._rec.is_current(frame):
                self._rec.exception(frame, exc)
        except _RowTimeout:
            raise
        except BaseException:
            pass


def _line_ranges(code: types.CodeType) -> tuple[list[int], list[int | None]]:
    """Where each of the code's line ranges starts, and its line (None: no line): an offset's line is that of the
    last range starting at or before it (co_lines covers the code without gaps)."""
    ranges = list(code.co_lines())
    return [start for start, _, _ in ranges], [line for _, _, line in ranges]


# ------------------------------------------------------------------------------------------ rows


class CapturedOutput(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr during a row: keeps the first `cap` characters."""

    def __init__(self, cap: int) -> None:
        self._parts: list[str] = []
        self._left = cap

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._left > 0:
            self._parts.append(text[: self._left])
            self._left -= len(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self._parts)


class RowRunner:
    """Loads one row's code as a module and evaluates its call under the tracer."""

    def __init__(self, options: dict, alarm: Alarm) -> None:
        self.options = {**DEFAULT_OPTIONS, **options}
        self._alarm = alarm
        self.reprer = SafeRepr(self.options["repr_chars"], self.options["repr_timeout_s"], alarm)
        self._engine = _engine(self.options["engine"])

    def run(self, code: str, call: str, filename: str) -> dict:
        """Load `code` as a module, then trace `call`; the row's result object."""
        self._engine.prepare(filename)
        module = _new_module(code, filename)
        output = CapturedOutput(self.options["output_chars"])
        saved = sys.stdout, sys.stderr, sys.getrecursionlimit()
        sys.stdout = sys.stderr = output
        deadline = self._alarm.push(self.options["call_timeout_s"], _RowTimeout)
        try:
            result = self._load_and_trace(module, code, call, filename)
        finally:
            self._alarm.pop(deadline)
            sys.stdout, sys.stderr = saved[0], saved[1]
            sys.setrecursionlimit(saved[2])
            sys.modules.pop(module.__name__, None)
        result["output"] = output.getvalue()  # last: the record's key order is the host's (json_line_raw)
        return result

    def _load_and_trace(self, module: types.ModuleType, code: str, call: str, filename: str) -> dict:
        try:
            exec(compile(code, filename, "exec", dont_inherit=True), module.__dict__)
            expression = compile(call, "<call>", "eval", dont_inherit=True)
        except BaseException as exc:
            return {"return_repr": None, "exception": self.reprer.exception_text(exc), "events": [],
                    "frames": [], "truncated": False}
        return self.trace_loaded(expression, module.__dict__, filename, direct_callee(call))[0]

    def prepare(self, filename: str) -> None:
        """For a caller that loads a row's code itself before trace_loaded: say which row loads (the monitoring
        engine then never takes its code for foreign code; without it, trace_loaded still gives the same trace)."""
        self._engine.prepare(filename)

    def trace_loaded(
        self, expression: types.CodeType, namespace: dict, filename: str, callee: str | None = None
    ) -> tuple[dict, object]:
        """Evaluate a compiled call under the tracer: (the result fields, the call's value).

        `callee`: the function name when the expression is a plain call of it (see direct_callee); its
        return event's repr is then reused as the call's, since no code runs after it returns.
        """
        recorder = Recorder(self.options, self.reprer)
        self._engine.attach(filename, recorder)
        value, error = _evaluate(expression, namespace, self._engine)
        if error is None:
            returned, text, name = recorder.returned
            reuse = returned is value and text is not None and callee is not None and name == callee
            return_repr, exception = (text if reuse else self.reprer(value)), None
        else:
            return_repr, exception = None, self.reprer.exception_text(error)
        return {"return_repr": return_repr, "exception": exception, "events": recorder.events,
                "frames": recorder.activations, "truncated": recorder.truncated}, value


# `name(arguments)` with no parenthesis inside and none of the words that could make a lambda, a
# comprehension, a walrus or an await: a call whose arguments call nothing, told without parsing it again.
_PLAIN_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)\s*\Z")
_NOT_PLAIN = re.compile("lambda|for|:=|await")
# The same with parentheses in the arguments (tuples, grouping): `name(...)`, arguments that contain no parenthesis
# that could call (one after a name, a closing bracket or a quote), no backslash or comment, and balanced.
_NESTED_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*\Z", re.DOTALL)
_CALLING = re.compile(r"[\w)\]'\"]\s*\(|[\\#]")


def _engine(name: str):
    """auto: sys.monitoring on 3.12+ (there it is the faster: its callbacks see only the traced code's events,
    the rest DISABLEd where it happens), sys.settrace before. Both give the same trace on 3.12+."""
    if name == "monitoring" or (name == "auto" and sys.version_info >= (3, 12)):
        if sys.version_info < (3, 12):
            raise RuntimeError("the monitoring engine needs Python >= 3.12 (sys.monitoring)")
        return MonitoringEngine()
    return SettraceEngine()


def direct_callee(call: str) -> str | None:
    """`f` for `f(...)` or `obj.f(...)` whose arguments call nothing; None for anything else."""
    plain = _PLAIN_CALL.match(call)
    if plain is not None and not _NOT_PLAIN.search(plain.group(2)):
        return plain.group(1)  # what the AST walk below returns for it, at a tenth of the cost
    nested = _NESTED_CALL.match(call) if plain is None else None
    if nested is not None and _grouping_only(nested.group(2)):
        return nested.group(1)  # the same, for arguments with tuples in them (the AST walk costs 20 us)
    import ast  # here: a cold job whose calls all match the patterns above never pays for it (a warm child has it)

    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or any(
        isinstance(inner, (ast.Call, ast.Lambda, ast.comprehension, ast.NamedExpr, ast.Await))
        for argument in [*node.args, *node.keywords]
        for inner in ast.walk(argument)
    ):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _grouping_only(arguments: str) -> bool:
    """Whether the arguments' parentheses only group (none can call) and balance, with none of _NOT_PLAIN's words."""
    if _CALLING.search(arguments) or _NOT_PLAIN.search(arguments):
        return False
    depth = 0
    for char in arguments:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _evaluate(expression, namespace: dict, engine) -> tuple[object, BaseException | None]:
    # Kept tiny: this frame and eval's are the only ones the tracer adds under the traced call.
    engine.start()
    try:
        value = eval(expression, namespace)
    except BaseException as exc:
        engine.stop()
        return None, exc
    engine.stop()
    return value, None


def encode_result(result: dict) -> str:
    """A row's result as one line of JSON (ASCII only, so any repr survives any channel)."""
    if _encode_record is not None:
        try:
            return _encode_record(result)  # the same text, in C
        except TypeError:
            pass
    try:
        return _ENCODER.encode(result)
    except (TypeError, ValueError):
        return _LENIENT_ENCODER.encode(result)


def _new_module(code: str, filename: str) -> types.ModuleType:
    """A fresh module named `traced_program` (never __main__), registered so that dataclasses etc. work."""
    module = types.ModuleType("traced_program")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return module


# ------------------------------------------------------------------------------------------ main


def main(data: dict, channel) -> None:
    """The tracer's job: a ``{"ready": {"python": ...}}`` record, then one record per row, in row order.

    data: {"options": {...}, "rows": [{"code": str, "call": str, "filename": str}], "hold": bool}. A row's record is
    its result encoded here (encode_result, the C encoder) and framed as it is (send_json): the host reads it once.
    With "hold", records are written every _FLUSH_S, not one by one: if the process dies, the rows whose records
    were held are lost, and the host runs them again unheld, which pins the death on its row.
    """
    alarm = Alarm()
    runner = RowRunner(data.get("options") or {}, alarm)  # a tracer that cannot start sends no "ready"
    channel.send({"ready": {"python": sys.version.split()[0]}})
    send, flush, clock = channel.send_json, channel.flush, time.monotonic
    if data.get("hold"):  # a write per 20 ms of rows, not per row (a row's frame costs more than its tracing)
        channel.hold()
    flushed = clock()
    for row in data["rows"]:
        send(encode_result(runner.run(row["code"], row["call"], row["filename"])))
        if clock() - flushed >= _FLUSH_S:
            flush()
            flushed = clock()
    alarm.disarm()
