"""Static checks of every dashboard: fixed UIDs, tags, links, a unit and a description per panel."""

from __future__ import annotations

import re
from typing import Any

from dashboards.common import TAG, UID_PREFIX
from dashboards.queries import DEFAULT_VALUES, panels

EXPECTED_UIDS = {
    "sentimon-overview",
    "sentimon-api",
    "sentimon-model",
    "sentimon-drift-feedback",
    "sentimon-server",
    "sentimon-logs",
    "sentimon-availability",
}
DATASOURCE_UIDS = {"prometheus": "prometheus", "loki": "loki"}


def test_uids_are_fixed_unique_and_prefixed(boards: list[dict[str, Any]]) -> None:
    uids = [board["uid"] for board in boards]
    assert len(uids) == len(set(uids))
    assert set(uids) == EXPECTED_UIDS
    assert all(uid.startswith(UID_PREFIX) for uid in uids)


def test_committed_file_names_are_the_uids(committed: list[dict[str, Any]]) -> None:
    assert {board["uid"] for board in committed} == EXPECTED_UIDS


def test_every_dashboard_is_tagged_and_linked(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        assert TAG in board["tags"], board["uid"]
        assert board["title"].startswith("sentimon / ")
        assert board["description"]
        dropdowns = [link for link in board["links"] if link["type"] == "dashboards"]
        assert dropdowns and dropdowns[0]["tags"] == [TAG] and dropdowns[0]["keepTime"]


def test_panel_links_point_at_existing_dashboards(boards: list[dict[str, Any]]) -> None:
    targets = []
    for board in boards:
        for panel in panels(board):
            for link in panel.get("links", []):
                match = re.match(r"/d/([\w-]+)\?", link["url"])
                assert match, link["url"]
                targets.append(match.group(1))
    assert targets
    assert set(targets) <= EXPECTED_UIDS


def test_every_panel_has_a_unit_and_a_description(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for panel in panels(board):
            where = f"{board['uid']} / {panel['title']}"
            assert panel["fieldConfig"]["defaults"].get("unit"), where
            description = panel.get("description", "")
            assert "\n\nBad: " in description and "\n\nAlerts: " in description, where
            assert panel["targets"], where
            assert panel["datasource"]["uid"] == DATASOURCE_UIDS[panel["datasource"]["type"]]


def test_panel_titles_and_ids_are_unique(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        titles = [panel["title"] for panel in panels(board)]
        assert len(titles) == len(set(titles)), board["uid"]
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, board["uid"]


def test_panels_fit_the_grid_without_overlapping(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (board["uid"], panel["title"])
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, (board["uid"], panel["title"])
            cells |= area


def test_rows_hold_red_then_the_rest(boards: list[dict[str, Any]]) -> None:
    api = next(board for board in boards if board["uid"] == "sentimon-api")
    rows = [panel["title"] for panel in api["panels"] if panel["type"] == "row"]
    assert rows[:3] == ["Rate", "Errors", "Duration"]


def test_variable_defaults_are_the_substituted_values(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for variable in board.get("templating", {}).get("list", []):
            name, current = variable["name"], variable["current"]["value"]
            if current == "$__all":
                current = variable["allValue"]
            assert DEFAULT_VALUES[name] == current, (board["uid"], name)
