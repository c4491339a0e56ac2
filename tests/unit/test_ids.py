"""Request ids made here are UUIDv7: unique, time-sorted, and able to tell their age."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime

from sentimon.ids import item_ids, made_at, new_id
from sentimon.logs.context import accept_request_id


def test_ids_are_uuid7_in_hex() -> None:
    value = new_id()
    parsed = uuid.UUID(value)
    assert len(value) == 32 and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert len({new_id() for _ in range(1000)}) == 1000


def test_ids_sort_by_time_and_tell_it() -> None:
    earlier, later = new_id(now_ms=1_700_000_000_000), new_id(now_ms=1_700_000_000_001)
    assert earlier < later
    assert made_at(earlier) == datetime.fromtimestamp(1_700_000_000, UTC)
    assert made_at(f"{earlier}:3") == made_at(earlier)


def test_a_callers_own_id_has_no_known_age() -> None:
    assert made_at("my-request-1") is None
    assert made_at("2ef71fd22a0944a4a4882632f9c485db") is None  # a UUIDv4
    assert made_at(new_id().upper()) is None


def test_batch_items_are_numbered_after_the_request() -> None:
    assert list(item_ids("b7", 3)) == ["b7:0", "b7:1", "b7:2"]


def test_a_missing_or_odd_header_gets_a_new_id() -> None:
    assert accept_request_id("mine-1") == "mine-1"
    for header in (None, "", "has space", "x" * 129):
        assert made_at(accept_request_id(header)) is not None


def test_ids_stay_unique_across_reads_of_the_os_source_and_threads() -> None:
    made: list[str] = []

    def make() -> None:
        made.extend(new_id(now_ms=0) for _ in range(2_000))  # same ms: only the random bits

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == len(made) == 8_000  # about 20 reads of the OS source


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent holds unread random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_id(now_ms=0).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_id(now_ms=0)
