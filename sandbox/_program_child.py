"""The job program behind `sandbox.run_program` (stdlib only, Python 3.8+).

The program under test runs as a child process of the job: its stdin is the given bytes, its stdout and stderr are
its own (files in the working dir, read back up to the cap), and the job's result channel is out of its reach (a
close-on-exec descriptor of the job's process). The job reports the child's exit code, its output, and whether its
own time ran out; a limit that kills the whole sandbox is the supervisor's to report.
"""

import os
import subprocess
import sys
import time


def main(data, channel):
    with open("_semcoder_stdin", "wb") as stdin:
        stdin.write(data["stdin"])
    started = time.monotonic()
    timed_out = False
    with open("_semcoder_stdin", "rb") as stdin, open("_semcoder_stdout", "wb") as out, \
            open("_semcoder_stderr", "wb") as err:
        try:
            code = subprocess.call([sys.executable, data["main"]], stdin=stdin, stdout=out, stderr=err,
                                   timeout=data["timeout_s"], env=dict(os.environ))
        except subprocess.TimeoutExpired:  # (subprocess.call kills the child first)
            code, timed_out = None, True
    duration = time.monotonic() - started
    report = {"exit_code": code, "timed_out": timed_out, "duration_s": duration}
    for name in ("stdout", "stderr"):
        with open("_semcoder_" + name, "rb") as produced:
            head = produced.read(data["cap"] + 1)
        report[name] = head[:data["cap"]].decode("utf-8", "replace")
        report[name + "_truncated"] = len(head) > data["cap"]
    channel.send(report)
