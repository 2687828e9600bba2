"""The sandbox job of the batch executor (runs as `__main__` inside the sandbox). Standard library only.

For each hash seed of the spec it runs `_exec_child.py` over all items in a child process with that
PYTHONHASHSEED (so set and dict-of-str orders really differ between the runs that the determinism
check compares). A child that dies or stalls on an item costs only that item: it is reported as
`crashed` or `timeout` and a fresh child carries on from the next one. The collected runs are printed
as one framed JSON line.
"""

import json
import os
import select
import subprocess
import sys
import time

SPEC = "exec_spec.json"
CHILD = "_exec_child.py"


def _run_seed(spec, seed):
    results = []
    total = len(spec["items"])
    while len(results) < total:
        results.extend(_one_child(spec, seed, len(results)))
        if len(results) < total:
            results.append(_lost_item(spec, len(results)))
    return results


def _lost_item(spec, index):
    """The item the child was on when it died or ran past the item budget."""
    return {"load": {"status": spec.get("_last_death", "crashed")}, "calls": []}


def _one_child(spec, seed, start):
    env = {"PYTHONHASHSEED": str(seed), "PATH": os.environ.get("PATH", "/usr/bin")}
    child = subprocess.Popen(
        [sys.executable, "-S", "-s", "-B", CHILD, SPEC, str(start)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
    )
    prefix = f"@@pyx-exec {spec['nonce']} "
    done = []
    buffer = b""
    budget = spec["item_timeout_s"]
    deadline = time.monotonic() + budget + 1.0  # the first item also pays the interpreter's start
    spec["_last_death"] = "crashed"
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([child.stdout], [], [], max(remaining, 0))
        if not ready:
            spec["_last_death"] = "timeout"
            break
        chunk = os.read(child.stdout.fileno(), 1 << 20)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", errors="replace")
            if text.startswith(prefix):
                _, _, body = text[len(prefix):].partition(" ")
                done.append(json.loads(body))
                deadline = time.monotonic() + budget
        if start + len(done) == len(spec["items"]):
            break
    child.kill()
    child.wait()
    return done


def main():
    with open(SPEC, encoding="utf-8") as handle:
        spec = json.load(handle)
    runs = [_run_seed(spec, seed) for seed in spec["hash_seeds"]]
    sys.stdout.write(f"@@pyx-exec-result {spec['nonce']} {json.dumps(runs)}\n")


if __name__ == "__main__":
    main()
