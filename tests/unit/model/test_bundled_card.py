"""The committed model card states the int8 recipe the backend really uses."""

from __future__ import annotations

import json
from dataclasses import asdict

from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.model.build.card import render_card
from sentimon.model.int8 import RECIPE, RECIPE_TRADE_OFF, RECIPE_VERSION


def test_card_names_the_current_int8_recipe_and_its_trade_off() -> None:
    meta = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())
    assert meta["int8"]["recipe_version"] == RECIPE_VERSION
    assert meta["int8"]["recipe"] == RECIPE
    assert meta["int8"]["trade_off"] == [asdict(row) for row in RECIPE_TRADE_OFF]


def test_committed_card_is_rendered_from_its_metadata() -> None:
    meta = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())
    assert (BUNDLED_MODEL_DIR / "README.md").read_text() == render_card(meta)
