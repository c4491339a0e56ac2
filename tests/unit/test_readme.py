"""The README's configuration table stays true to Settings."""

import re
from pathlib import Path

from sentimon.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_every_setting_is_in_the_configuration_table_with_its_default() -> None:
    rows = {
        m.group(1): m
        for m in re.finditer(
            r"^\| `SENTIMON_(\w+)` \| `(--[\w-]+)` \| ([^|]+) \| (.+) \|$",
            README.read_text(),
            re.MULTILINE,
        )
    }
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        row = rows[name.upper()]
        assert row.group(2) == f"--{name.replace('_', '-')}"
        assert row.group(3).strip() == _shown(field.default), name
        assert row.group(4).strip() == " ".join(str(field.description).split()), name
