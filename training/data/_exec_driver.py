"""The batch executor's job program (sandbox/job.py): `main(data, channel)` inside the sandbox. Stdlib only.

`data` is the batch: the hash seeds, the items and the executor's options. For each hash seed it runs
`_exec_child.py` over all items in a child process with that PYTHONHASHSEED (so set and dict-of-str
orders really differ between the runs that the determinism check compares). A child that dies or stalls
on an item costs only that item: it is reported as `crashed` or `timeout` and a fresh child carries on
from the next one. Each seed's runs go to the host as one record on the job's channel.

Children speak the job protocol too: each gets a fresh key on stdin and writes keyed frames (a `ready`
record, then one record per item) on a private dup of its stdout; the driver reads them as they arrive
(`_semcoder_job.parse` over the complete lines so far), so a stall is caught within the item budget and
anything else on the child's stdout (a forged frame, junk written to the channel's fd) only loses the
item that was running.
"""

import contextlib
import json
import os
import secrets
import select
import subprocess
import sys
import time

from _semcoder_job import parse  # the job runtime: one frame reader for the host and the children

CHILD = "_exec_child.py"
READY = "ready"
_LINE_CAP = 16 * 1024 * 1024  # a report line longer than this is junk, not an item's report


def main(data, channel):
    for seed in data["hash_seeds"]:
        channel.send(_run_seed(data, seed))


def _run_seed(data, seed):
    results = []
    total = len(data["items"])
    while len(results) < total:
        done, death = _one_child(data, seed, len(results))
        results.extend(done)
        if len(results) < total:  # the item the child was on when it died, stalled or broke its channel
            results.append({"load": {"status": death}, "calls": []})
    return results


def _one_child(data, seed, start):
    """Runs items[start:] in one child: (the reports it made, how it was lost if it stopped short)."""
    key = secrets.token_hex(32)
    options = {name: value for name, value in data.items() if name not in ("items", "hash_seeds")}
    request = json.dumps({**options, "key": key, "items": data["items"][start:]}).encode("utf-8")
    env = {"PYTHONHASHSEED": str(seed), "PATH": os.environ.get("PATH", "/usr/bin")}
    child = subprocess.Popen(
        [sys.executable, "-S", "-s", "-B", CHILD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        return _read_child(child, request, key, len(data["items"]) - start, data["item_timeout_s"])
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def _read_child(child, request, key, wanted, budget):
    try:
        child.stdin.write(request)  # the child reads all of it before it runs anything
        child.stdin.close()
    except BrokenPipeError:  # it died before reading: nothing comes on stdout either, judged below
        with contextlib.suppress(OSError):
            child.stdin.close()
    fd = child.stdout.fileno()
    text, pending = "", bytearray()
    records = []
    deadline = time.monotonic() + budget + 1.0  # the first item also pays the interpreter's start
    while len(records) < wanted + 1:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return records[1:], "timeout"
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut < 0:
            if len(pending) > _LINE_CAP:
                break
            continue
        text += pending[: cut + 1].decode("utf-8", errors="replace")
        del pending[: cut + 1]
        seen = len(records)
        records, _, problem = parse(text, key)
        if len(records) > seen:
            deadline = time.monotonic() + budget
        if problem:  # junk or a forged frame on the channel: the item that was running is lost
            break
    if not records:  # nothing untrusted runs before `ready`: a child that never got there is a harness failure
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=2)
        raise RuntimeError(f"the executor's child stopped before it was ready (exit code {child.returncode})")
    if records[0] != READY:
        raise RuntimeError(f"the executor's child reported {records[0]!r} before it was ready")
    return records[1 : wanted + 1], "crashed"
