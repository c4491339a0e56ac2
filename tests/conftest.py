from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sentimon.app import create_app
from sentimon.config import Settings
from sentimon.logs.setup import configure_logging, flush_logs
from tests.fakes import FakeModel
from tests.postgres import PostgresServer, remove, start_postgres

os.environ["HF_HUB_OFFLINE"] = "1"
# ONNX exports made by tests go to a throwaway folder, not the user's cache.
_CACHE_DIR = tempfile.mkdtemp(prefix="sentimon-test-cache-")
os.environ["SENTIMON_CACHE_DIR"] = _CACHE_DIR
# And prediction logs to another, not the user's data folder.
_DATA_DIR = tempfile.mkdtemp(prefix="sentimon-test-data-")
os.environ["SENTIMON_DATA_DIR"] = _DATA_DIR
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def pytest_sessionfinish() -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (each test gets its own database)."""
    server = start_postgres()
    yield server
    remove(server)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_flush_ms=20,
        max_text_chars=280,
        max_batch_items=8,
        max_body_bytes=4096,
        max_queue_size=16,
        request_timeout_s=5,
    )


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def client(
    settings: Settings, fake_model: FakeModel, registry: CollectorRegistry
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, model=fake_model, registry=registry)) as c:
        yield c


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Route logging through the real JSON configuration into memory; read it as dicts."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", stdout=out, stderr=err)

    def read() -> list[dict[str, Any]]:
        flush_logs()
        text = out.getvalue() + err.getvalue()
        return [json.loads(line) for line in text.splitlines()]

    yield read
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
