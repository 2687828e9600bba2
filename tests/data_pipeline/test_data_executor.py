"""The executability filter's evidence, from real sandboxed runs: side effects, determinism, limits, literals."""

from __future__ import annotations

from training.data.executability import HASH_SEEDS, judge, select_examples
from training.data.executor import BatchExecutor, ExecItem
from training.data.models import Example


def _judge(executor: BatchExecutor, code: str, calls: list[str]) -> str | None:
    return judge(executor.runs([ExecItem(code=code, entry="f", calls=calls)], HASH_SEEDS)[0])


def test_outputs_statuses_and_coverage(executor: BatchExecutor) -> None:
    code = "def f(x, y):\n    if x > y:\n        return x\n    return [x, y]\n"
    run = executor.run_once([ExecItem(code=code, entry="f", calls=["3, 1", "1, 3", "[1], 2"])])[0]
    assert [c.status for c in run.calls] == ["ok", "ok", "error"]
    assert [c.output for c in run.calls[:2]] == ["3", "[1, 3]"]
    assert run.calls[0].lines == [2, 3] and run.calls[1].lines == [2, 4]
    assert run.calls[2].error.startswith("TypeError")


def test_side_effects_are_caught_even_when_the_program_swallows_them(executor: BatchExecutor) -> None:
    writes = "def f(p):\n    open(p, 'w').write('x')\n    return 1\n"
    reads = "def f(p):\n    return open(p).read()\n"
    hidden = ("import os\ndef f(n):\n    try:\n        os.system('true')\n    except BaseException:\n"
              "        pass\n    return n\n")
    sockets = "import socket\ndef f(n):\n    socket.socket().connect(('127.0.0.1', 9))\n    return n\n"
    assert _judge(executor, writes, ["'a.txt'"]) == "side_effect"
    assert _judge(executor, reads, ["'/etc/hostname'"]) == "side_effect"
    assert _judge(executor, hidden, ["1"]) == "side_effect"
    assert _judge(executor, sockets, ["1"]) == "side_effect"
    assert _judge(executor, "import re, math\ndef f(s):\n    return len(re.findall('a', s)) + math.floor(1.5)\n",
                  ["'banana'"]) is None


def test_hash_seed_dependence_is_nondeterministic(executor: BatchExecutor) -> None:
    assert _judge(executor, "def f(s):\n    return ''.join(set(s))\n", ["'abcdefghijklmnop'"]) == "nondeterministic"
    assert _judge(executor, "def f(s):\n    return ''.join(sorted(set(s)))\n", ["'abcdefghijklmnop'"]) is None


def test_hangs_and_crashes_cost_only_their_own_item(executor: BatchExecutor) -> None:
    items = [
        ExecItem(code="def f(n):\n    while True:\n        n += 1\n", entry="f", calls=["1", "2"]),
        ExecItem(code="import os\ndef f(n):\n    os._exit(3)\n", entry="f", calls=["1"]),
        ExecItem(code="def f(n):\n    return n * 2\n", entry="f", calls=["21"]),
    ]
    hang, crash, fine = executor.run_once(items)
    assert [c.status for c in hang.calls] == ["timeout", "skipped"]
    assert crash.load.status == "crashed"
    assert fine.calls[0].output == "42"


def test_outputs_must_round_trip_as_literals(executor: BatchExecutor) -> None:
    assert _judge(executor, "def f(n):\n    return object()\n", ["1"]) == "no_valid_input_unrepresentable"
    assert _judge(executor, "def f(n):\n    return float('nan')\n", ["1"]) == "no_valid_input_unrepresentable"
    assert _judge(executor, "def f(n):\n    return 'x' * 10_000\n", ["1"]) == "no_valid_input_too_large"
    assert _judge(executor, "def f(n):\n    return {'a': (n, None, 1.5)}\n", ["1"]) is None


def test_behaviour_duplicates_are_dropped() -> None:
    examples = [Example(input="1", output="2", lines=(2,)), Example(input="3", output="2", lines=(2,)),
                Example(input="5", output="2", lines=(2, 3)), Example(input="7", output="9", lines=(2,))]
    kept = select_examples(examples, keep=4)
    assert [e.input for e in kept] == ["1", "7", "5"]


def test_output_floods_clocks_and_random_sources_drop_the_program(executor: BatchExecutor) -> None:
    flood = "def f(n):\n    print('x' * 6_000_000)\n    return n\n"
    swallowed = ("def f(n):\n    try:\n        for _ in range(10_000):\n            print('y' * 100)\n"
                 "    except BaseException:\n        pass\n    return n\n")
    clocks = ["import time\ndef f(n):\n    return n + int(time.time() > 0)\n",
              "from time import perf_counter as tick\ndef f(n):\n    tick()\n    return n\n",
              "import datetime\ndef f(n):\n    return datetime.datetime.now().year * 0 + n\n"]
    randoms = ["import random\ndef f(n):\n    return n + int(random.random() * 0)\n",
               "import random\ndef f(n):\n    return random.Random(4).randint(n, n)\n",
               "import os\ndef f(n):\n    return len(os.urandom(n))\n",
               "import uuid\ndef f(n):\n    return len(str(uuid.uuid4())) + n\n"]
    assert _judge(executor, flood, ["1"]) == "output_flood"
    assert _judge(executor, swallowed, ["1"]) == "output_flood"  # caught by the program, still flagged
    assert _judge(executor, "print('z' * 6_000_000)\ndef f(n):\n    return n\n", ["1"]) == "load_output_flood"
    for code in clocks:
        assert _judge(executor, code, ["1"]) == "clock", code
    for code in randoms:
        assert _judge(executor, code, ["1"]) == "randomness", code
    assert _judge(executor, "def f(p):\n    return open(p).read()\n", ["'/etc/hostname'"]) == "side_effect"
    # What stays allowed: a little printing, date arithmetic without the clock, time.sleep's absence.
    assert _judge(executor, "def f(n):\n    print('n is', n)\n    return n * 2\n", ["3"]) is None
    assert _judge(executor, "import datetime\ndef f(d):\n    return (datetime.date(2020, 1, d) - "
                            "datetime.date(2020, 1, 1)).days\n", ["5"]) is None
