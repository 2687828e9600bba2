"""The job protocol: only keyed frames count, once each, in order, ended properly; on every backend.

Each forgery below is what code running inside a job can do to its own process: print, write to any fd
it finds, exit early, register atexit hooks, patch json. None may yield a job that reads as ended.
"""

from __future__ import annotations

import pytest

from sandbox import Job, Limits, Pool, SandboxError, run_job
from sandbox.job import JOB_FILE, outer_limits, read, to_request

# The program runs the code under test (data["code"]) and then reports data["n"] records.
PROGRAM = '''
def main(data, channel):
    exec(data["code"], {"__name__": "untrusted"})
    for i in range(data["n"]):
        channel.send({"i": i, "values": [1.5, None, True, "\\u00e9", -3]})
'''
LIMITS = Limits(wall_time_s=20, cpu_time_s=20, memory_mb=256)


def job(code: str, n: int = 2) -> Job:
    return Job(program=PROGRAM, data={"code": code, "n": n}, limits=LIMITS)


def test_an_honest_job_reports_its_records_in_order(backend: str) -> None:
    result = run_job(job("print('the code under test talks')", n=3), backend=backend)
    assert result.ok, result.problem
    assert [r["i"] for r in result.records] == [0, 1, 2]
    assert result.records[0]["values"] == [1.5, None, True, "é", -3]
    assert "talks" in result.execution.stderr  # prints are diagnostics on stderr, never on the channel


HELD = '''
def main(data, channel):
    channel.send("before")
    channel.hold()
    channel.send_json('{"held": 1}')
    channel.send("held too")
    if data == "flush_then_die":
        channel.flush()
        import os
        os._exit(3)
    if data == "die":
        import os
        os._exit(3)
'''


def test_held_records_arrive_in_order_at_the_end_and_die_with_the_process() -> None:
    result = run_job(Job(program=HELD, data="end", limits=LIMITS))
    assert result.ok, result.problem
    assert result.records == ["before", '{"held": 1}', "held too"] and type(result.records[1]).__name__ == "RawJSON"
    died = run_job(Job(program=HELD, data="die", limits=LIMITS))
    assert not died.ok and died.records == ["before"]  # what it held was never written
    flushed = run_job(Job(program=HELD, data="flush_then_die", limits=LIMITS))
    assert not flushed.ok and flushed.records == ["before", '{"held": 1}', "held too"]


FORGERIES = {
    # A fake end frame printed from atexit: atexit never runs after the report (os._exit), stdout is not the channel.
    "atexit_print": ("import atexit, sys\natexit.register(lambda: print('@@semcoder-job end 0'))", "ok"),
    # os._exit before the program reports: no end frame.
    "os_exit": ("import os\nos._exit(0)", "the job's program exited before reporting its end"),
    "sys_exit": ("import sys\nsys.exit(0)", "before reporting its end"),
    # Junk written to every pipe fd it can find, the channel among them.
    "fd_scan": ("import os\nfor fd in os.listdir('/proc/self/fd'):\n"
                "    try:\n        os.write(int(fd), b'@@semcoder-job 0 00 {}\\n')\n    except OSError:\n        pass",
                "a report without the job's key"),
    # json patched before the report: the runtime's encoder was bound before any untrusted code ran.
    "json_patch": ("import json\njson.dumps = lambda *a, **k: '{\"passed\": true}'", "ok"),
    # A thread that keeps writing junk after main returns: killed by os._exit with the process.
    "late_thread": ("import threading, time, os\n"
                    "def spam():\n    time.sleep(0.5)\n    os.write(1, b'junk')\n"
                    "threading.Thread(target=spam, daemon=False).start()", "ok"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forgeries_never_read_as_a_forged_report(backend: str, name: str) -> None:
    code, expected = FORGERIES[name]
    result = run_job(job(code), backend=backend)
    if expected == "ok":  # the attack changed nothing: the real records, exactly
        assert result.ok, result.problem
        assert [r["i"] for r in result.records] == [0, 1]
    else:
        assert not result.ok and expected in result.problem, result.problem


def test_frames_are_checked_against_the_key() -> None:
    request, key = to_request(job("pass"))
    assert JOB_FILE in request.files and key not in request.code
    import os

    from sandbox._job_child import Channel, parse

    read_fd, write_fd = os.pipe()
    channel = Channel(write_fd, key)
    channel.send({"a": 1})
    channel.send([2])
    channel._end()
    os.close(write_fd)
    text = os.read(read_fd, 65536).decode()
    os.close(read_fd)
    assert parse(text, key) == ([{"a": 1}, [2]], True, "")
    lines = text.splitlines(keepends=True)
    assert "out of sequence or repeated" in parse(lines[0] + lines[0] + lines[1] + lines[2], key)[2]
    assert "after the job's end" in parse(text + lines[0], key)[2]
    assert "without the job's key" in parse(text, "00" * 32)[2]
    # A frame dropped: the end frame's count no longer matches.
    assert "end frame" in parse(lines[0] + lines[2], key)[2]


def test_reports_refuse_values_that_could_lie(backend: str) -> None:
    program = "class S(str):\n    pass\n\ndef main(data, channel):\n    channel.send({'x': S('passed')})\n"
    result = run_job(Job(program=program, limits=LIMITS), backend=backend)
    assert not result.ok and "cannot hold a S" in result.problem


def test_a_report_past_the_output_cap_is_a_failed_job() -> None:
    program = "def main(data, channel):\n    channel.send('x' * 200_000)\n"
    result = run_job(Job(program=program, limits=Limits(output_bytes=50_000)))
    assert not result.ok and result.problem


def test_job_files_cannot_replace_the_runtime() -> None:
    with pytest.raises(SandboxError, match="may not be named"):
        to_request(Job(program=PROGRAM, files={"_semcoder_job.py": "evil"}))


def test_the_job_file_is_gone_before_main_runs(backend: str) -> None:
    program = "import os\n\ndef main(data, channel):\n    channel.send(sorted(os.listdir('.')))\n"
    result = run_job(Job(program=program, files={"a.txt": "x"}, limits=LIMITS), backend=backend)
    assert result.ok, result.problem
    assert JOB_FILE not in result.records[0] and "a.txt" in result.records[0]


def test_pool_runs_jobs_and_a_timeout_is_a_failed_job() -> None:
    slow = Job(program="def main(data, channel):\n    while True:\n        pass\n",
               limits=Limits(wall_time_s=1, cpu_time_s=1))
    with Pool(workers=2) as pool:
        results = pool.run_jobs([job("pass", n=1), slow, job("pass", n=2)])
    assert [r.ok for r in results] == [True, False, True]
    assert "ran out of time" in results[1].problem
    assert len(results[2].records) == 2


def test_outer_limits_cover_every_unit() -> None:
    limits = outer_limits(per_unit_s=2.0, units=10, start_s=5.0, per_unit_bytes=1000)
    assert limits.wall_time_s == limits.cpu_time_s == 5.0 + 10 * 2.5
    assert limits.output_bytes == 1_000_000 + 10_000


def test_read_reports_a_crash_with_its_stderr() -> None:
    result = run_job(Job(program="def main(data, channel):\n    raise ValueError('boom')\n", limits=LIMITS))
    assert not result.ok and "ValueError: boom" in result.problem
    again = read(result.execution, "00" * 32)
    assert not again.ok


def test_a_job_can_use_multiprocessing_spawn_and_posix_semaphores() -> None:
    # spawn children import the job's main module again (as __mp_main__): they must not serve the job a second
    # time; their locks need a writable /dev/shm. Both hung or failed test suites (tqdm's test_rlock_creation).
    program = ("import multiprocessing\n\ndef main(data, channel):\n"
               "    with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
               "        channel.send(pool.map(abs, [-1, -2]))\n")
    result = run_job(Job(program=program, limits=Limits(wall_time_s=60, cpu_time_s=60)))
    assert result.ok, result.problem + result.execution.stderr[-2000:]
    assert result.records == [[1, 2]]


def test_a_job_runs_under_its_own_environment_and_locale(backend: str) -> None:
    program = ("import locale, os, sys\n\ndef main(data, channel):\n"
               "    channel.send([os.environ.get('APP_MODE'), locale.getpreferredencoding(False), sys.flags.utf8_mode])\n")
    plain = run_job(Job(program=program, limits=LIMITS), backend=backend)
    c_locale = run_job(Job(program=program, env={"APP_MODE": "test", "LC_ALL": "C"}, limits=LIMITS), backend=backend)
    assert plain.ok and c_locale.ok, plain.problem + c_locale.problem
    assert plain.records == [[None, "UTF-8", 0]]
    assert c_locale.records == [["test", "ANSI_X3.4-1968", 0]]
    with pytest.raises(ValueError, match="HOME is the sandbox's own"):
        Job(program=program, env={"HOME": "/root"}).model_dump() and to_request(Job(program=program, env={"HOME": "/"}))


def test_a_job_can_run_a_shell_script() -> None:
    # Hook scripts (cookiecutter's tests run `#!/bin/bash` hooks) need a shell: /usr/bin is there, read-only.
    program = ("import os, subprocess\n\ndef main(data, channel):\n"
               "    with open('hook.sh', 'w') as f:\n        f.write('#!/bin/sh\\necho hooked\\n')\n"
               "    os.chmod('hook.sh', 0o755)\n"
               "    done = subprocess.run(['./hook.sh'], capture_output=True, text=True)\n"
               "    channel.send([done.returncode, done.stdout, os.access('/usr/bin', os.W_OK)])\n")
    result = run_job(Job(program=program, limits=LIMITS))
    assert result.ok, result.problem
    assert result.records == [[0, "hooked\n", False]]


def test_nothing_a_job_leaves_in_dev_shm_reaches_the_next() -> None:
    write = "import os\n\ndef main(data, channel):\n    open('/dev/shm/left', 'w').write('x')\n    channel.send(1)\n"
    look = "import os\n\ndef main(data, channel):\n    channel.send(os.listdir('/dev/shm'))\n"
    with Pool(workers=1) as pool:
        results = pool.run_jobs([Job(program=write, limits=LIMITS), Job(program=look, limits=LIMITS)])
    assert results[0].ok and results[1].ok, results[0].problem + results[1].problem
    assert results[1].records == [[]]
