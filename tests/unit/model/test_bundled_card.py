"""The committed model card states the int8 recipe the backend really uses."""

from __future__ import annotations

import json
from dataclasses import asdict

from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.model.build.card import render_card
from sentimon.model.build.int8_trade_off import TRADE_OFFS
from sentimon.model.int8 import RECIPE


def test_card_names_the_served_recipe_and_its_trade_offs() -> None:
    int8 = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())["int8"]
    figures = int8["measured"]
    assert figures["recipe_version"] == RECIPE.id
    assert figures["weight_bits"] == RECIPE.weight_bits
    assert figures["recipe"] == RECIPE.description
    assert figures["packed"] is True
    assert figures["measured_on"]
    expected = {name: asdict(t) for name, t in TRADE_OFFS.items()}
    assert int8["trade_off"] == json.loads(json.dumps(expected))


def test_committed_card_is_rendered_from_its_metadata() -> None:
    meta = json.loads((BUNDLED_MODEL_DIR / "sentimon.json").read_text())
    assert (BUNDLED_MODEL_DIR / "README.md").read_text() == render_card(meta)
