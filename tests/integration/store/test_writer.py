"""The background writer: batches rows in, never blocks the caller, counts every row it
cannot write, and outlives a database outage without losing what it queued."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from sentimon.metrics.store import StoreMetrics
from sentimon.store.engine import upgrade
from sentimon.store.health import StoreHealth
from sentimon.store.writer import PredictionWriter, Row, WriterLimits
from tests.integration.store.helpers import count, engine_for, ids, row, store_metrics
from tests.postgres import remove, start_postgres


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def dropped(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value("sentiment_store_dropped_total", {"reason": reason})
    return value or 0.0


@pytest.fixture
def parts(database_url: str) -> Iterator[tuple[Engine, StoreMetrics, CollectorRegistry]]:
    engine = engine_for(database_url)
    metrics, registry = store_metrics()
    yield engine, metrics, registry
    engine.dispose()


def writer_for(
    engine: Engine, metrics: StoreMetrics, limits: WriterLimits
) -> PredictionWriter[Row]:
    health = StoreHealth(metrics, "test")
    writer = PredictionWriter(engine, metrics, health, limits, key=row_id, to_row=same)
    writer.start()
    return writer


def row_id(item: Row) -> str:
    return str(item["id"])


def same(item: Row) -> Row:
    return item


def test_rows_are_written_in_batches_and_counted(
    parts: tuple[Engine, StoreMetrics, CollectorRegistry],
) -> None:
    engine, metrics, registry = parts
    writer = writer_for(engine, metrics, WriterLimits(batch_size=4, flush_interval_s=0.02))
    writer.submit([row(f"r{i:02d}") for i in range(10)])
    assert writer.wait_written("r09", timeout_s=10)
    wait_for(lambda: count(engine) == 10)
    writer.close()
    assert ids(engine) == [f"r{i:02d}" for i in range(10)]
    assert registry.get_sample_value("sentiment_store_writes_total") == 10
    assert registry.get_sample_value("sentiment_store_write_seconds_count") == 3  # 4 + 4 + 2
    assert registry.get_sample_value("sentiment_store_up") == 1
    assert registry.get_sample_value("sentiment_store_queue_depth") == 0


def test_a_repeated_id_keeps_the_first_row_and_counts_the_other(
    parts: tuple[Engine, StoreMetrics, CollectorRegistry],
) -> None:
    engine, metrics, registry = parts
    writer = writer_for(engine, metrics, WriterLimits(flush_interval_s=0.02))
    writer.submit([row("same", "positive")])
    writer.submit([row("same", "negative"), row("other")])
    writer.close()
    assert ids(engine) == ["other", "same"]
    assert dropped(registry, "duplicate_id") == 1


def test_a_full_queue_drops_and_counts_without_blocking(
    parts: tuple[Engine, StoreMetrics, CollectorRegistry],
) -> None:
    engine, metrics, registry = parts
    health = StoreHealth(metrics, "test")
    # Not started: nothing drains the queue.
    writer = PredictionWriter(
        engine, metrics, health, WriterLimits(queue_size=5), key=row_id, to_row=same
    )
    started = time.perf_counter()
    writer.submit([row(f"q{i}") for i in range(8)])
    writer.submit([row("late")])
    assert time.perf_counter() - started < 0.05
    assert dropped(registry, "queue_full") == 4
    assert registry.get_sample_value("sentiment_store_queue_depth") == 5
    assert writer.is_pending("q4") and not writer.is_pending("q5")


def test_rows_left_at_shutdown_are_written_first(
    parts: tuple[Engine, StoreMetrics, CollectorRegistry],
) -> None:
    engine, metrics, registry = parts
    writer = writer_for(engine, metrics, WriterLimits(flush_interval_s=5.0))
    writer.submit([row(f"s{i}") for i in range(3)])
    writer.close()
    assert count(engine) == 3
    assert dropped(registry, "shutdown") == 0


@pytest.mark.slow
def test_an_outage_loses_nothing_that_fits_in_the_queue() -> None:
    """PostgreSQL stopped under the writer, then started again: every queued row lands."""
    server = start_postgres()
    try:
        engine = engine_for(server.create_database())
        metrics, registry = store_metrics()
        writer = writer_for(engine, metrics, WriterLimits(flush_interval_s=0.02, max_backoff_s=0.2))
        writer.submit([row("before")])
        assert writer.wait_written("before", timeout_s=10)
        server.stop()
        writer.submit([row(f"during{i}") for i in range(5)])
        wait_for(lambda: registry.get_sample_value("sentiment_store_up") == 0)
        assert writer.is_pending("during4")
        server.start()
        assert writer.wait_written("during4", timeout_s=20)
        writer.close()
        assert count(engine) == 6
        assert registry.get_sample_value("sentiment_store_up") == 1
        assert sum(dropped(registry, r) for r in ("queue_full", "db_error", "shutdown")) == 0
        engine.dispose()
    finally:
        remove(server)


@pytest.mark.slow
def test_a_database_down_at_start_is_migrated_once_it_comes_up() -> None:
    server = start_postgres()
    try:
        url = server.create_database()
        server.stop()
        engine = engine_for(url, migrate=False)
        metrics, registry = store_metrics()
        health = StoreHealth(metrics, "test")
        writer = PredictionWriter(
            engine,
            metrics,
            health,
            WriterLimits(flush_interval_s=0.02, max_backoff_s=0.2),
            key=row_id,
            to_row=same,
            prepare=lambda: upgrade(engine),
        )
        writer.start()
        writer.submit([row("queued")])
        wait_for(lambda: health.problem is not None and "prepare the database" in health.problem)
        assert not health.up
        server.start()
        assert writer.wait_written("queued", timeout_s=20)
        assert health.up and count(engine) == 1
        writer.close()
        engine.dispose()
    finally:
        remove(server)
