from __future__ import annotations

import json
from typing import Any

import pytest

from dashboards.generate import generate
from dashboards.queries import load_dashboards


@pytest.fixture(scope="session")
def generated() -> dict[str, str]:
    """File name -> JSON text, straight from the generator."""
    return generate()


@pytest.fixture(scope="session")
def boards(generated: dict[str, str]) -> list[dict[str, Any]]:
    """The generated dashboards, parsed (test_generate checks the committed files match)."""
    return [json.loads(text) for _, text in sorted(generated.items())]


@pytest.fixture(scope="session")
def committed() -> list[dict[str, Any]]:
    return load_dashboards()
