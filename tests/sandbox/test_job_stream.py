"""Records as they come: Pool.submit_job(on_record=...) gives each record of a job, verified as the result verifies it,
while the job runs; the JobResult stays the judge."""

from __future__ import annotations

import threading

from sandbox import Job, Limits, Pool, _job_child

LIMITS = Limits(wall_time_s=60, cpu_time_s=60, memory_mb=512)

SENDS = """import os
def main(data, channel):
    for value in data["values"]:
        channel.send(value)
    if data.get("forge"):  # what the code under test could write to the channel's fd: not a frame of the job's
        for fd in range(3, 64):
            try:
                os.write(fd, b"@@semcoder-job 2 0000 {}\\n")
            except OSError:
                pass
        channel.send("after")
"""


def test_records_come_to_on_record_in_order_and_are_the_results() -> None:
    job = Job(program=SENDS, data={"values": [{"a": 1}, "two", [3]]}, limits=LIMITS)
    seen: list[tuple[int, object, str]] = []
    with Pool(workers=1) as pool:
        result = pool.submit_job(job, on_record=lambda index, record: seen.append(
            (index, record, threading.current_thread().name))).result()
    assert result.ok and result.records == [{"a": 1}, "two", [3]]
    assert [(index, record) for index, record, _ in seen] == [(0, {"a": 1}), (1, "two"), (2, [3])]
    assert {thread for _, _, thread in seen} == {"sandbox-slot"}  # the pool's thread, before the result was set


def test_the_stream_stops_where_the_channel_breaks_and_the_result_judges() -> None:
    job = Job(program=SENDS, data={"values": ["one", "two"], "forge": True}, limits=LIMITS)
    seen: list[object] = []
    with Pool(workers=1) as pool:
        result = pool.submit_job(job, on_record=lambda index, record: seen.append(record)).result()
    assert not result.ok and result.interfered
    assert seen == result.records == ["one", "two"]


def test_a_frame_reader_fed_byte_by_byte_reads_what_parse_reads() -> None:
    key = "ab" * 32
    lines = []
    keyed = _job_child.new_key_state(key)
    for seq, body in enumerate(['{"x": 1}', '"s"', "[1, 2]"]):
        lines.append(f"{_job_child.TAG} {seq} {_job_child.mac(keyed, seq, body)} {body}\n")
    text = "".join(lines) + f"{_job_child.TAG} end {_job_child.mac(keyed, 'end', '3')}\n"
    for broken in (text, text.replace('"s"', '"t"', 1)):  # the second: a record whose MAC no longer fits
        got: list[tuple[int, object]] = []
        reader = _job_child.FrameReader(key, lambda index, record, got=got: got.append((index, record)))
        for byte in broken.encode("ascii"):
            reader.feed(bytes([byte]))
        records, _, _ = _job_child.parse(broken, key)
        assert got == list(enumerate(records))
    assert len(records) == 1  # parse stopped at the broken record; so did the reader
