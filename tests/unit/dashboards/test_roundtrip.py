"""Each dashboard's JSON decodes through the SDK's models without losing a key.

The SDK's `from_json` silently drops keys it does not know, so a typo in a key (or an option
another Grafana version spells differently) would vanish on a round trip: compare key paths.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard


def key_paths(value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            paths.add(f"{prefix}/{key}")
            paths |= key_paths(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths |= key_paths(item, f"{prefix}[{index}]")
    return paths


def restrict(value: Any, like: Any) -> Any:
    """`value` with only the dict keys that `like` has (to compare values key by key)."""
    if isinstance(value, dict) and isinstance(like, dict):
        return {key: restrict(value[key], like[key]) for key in like if key in value}
    if isinstance(value, list) and isinstance(like, list):
        return [restrict(a, b) for a, b in zip(value, like, strict=False)]
    return value


def round_trip(board: dict[str, Any]) -> Any:
    register_default_plugins()
    return json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))


def test_round_trip_keeps_every_key(committed: list[dict[str, Any]]) -> None:
    assert committed
    for board in committed:
        back = round_trip(board)
        lost = key_paths(board) - key_paths(back)
        assert not lost, f"{board['uid']}: keys the SDK does not know: {sorted(lost)[:20]}"
        assert restrict(back, board) == board, f"{board['uid']}: values changed"


def test_round_trip_detects_an_unknown_key(committed: list[dict[str, Any]]) -> None:
    board = json.loads(json.dumps(committed[0]))
    panel = next(p for p in board["panels"] if p["type"] == "timeseries")
    panel["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 2
    lost = key_paths(board) - key_paths(round_trip(board))
    assert any(path.endswith("/lineWidht") for path in lost)


@pytest.mark.parametrize("key", ["titel", "descripton"])
def test_round_trip_detects_a_misspelled_panel_key(
    committed: list[dict[str, Any]], key: str
) -> None:
    board = json.loads(json.dumps(committed[0]))
    board["panels"][1][key] = "x"
    lost = key_paths(board) - key_paths(round_trip(board))
    assert any(path.endswith(f"/{key}") for path in lost)
