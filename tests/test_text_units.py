"""Text outputs carry units, and compare says when two runs had different loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from session_support import crafted_document

from stressdeck.cli import main
from stressdeck.core.units import format_quantity
from stressdeck.sessions.compare import load_differences
from stressdeck.sessions.session import session_from_document


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.00475, "s", "4.75 ms"),
        (2.5, "s", "2.5 s"),
        (6.144e7, "B", "61.4 MB"),
        (512.0, "B", "512 B"),
        (427.31, "/s", "427.3/s"),
        (3.0, "", "3"),
    ],
)
def test_quantities_read_with_their_units(value: float, unit: str, text: str) -> None:
    assert format_quantity(value, unit) == text


def test_compare_names_the_load_differences_before_judging(tmp_path: Path, capsys) -> None:
    base_doc, new_doc = crafted_document(), crafted_document()
    new_doc["plan"]["load"]["users"] = 20
    new_doc["plan"]["load"]["duration"] = 60.0
    base, new = (
        session_from_document(base_doc, "base.toml"),
        session_from_document(new_doc, "new.toml"),
    )
    assert load_differences(base, new) == ["users 5 → 20", "duration 10 s → 60 s"]
    assert load_differences(base, base) == []
    paths = []
    for name, document in (("base.toml", base_doc), ("new.toml", new_doc)):
        path = tmp_path / name
        path.write_text(tomli_w.dumps(document), encoding="utf-8")
        paths.append(str(path))
    main(["compare", *paths])
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if line.startswith("warning:"))
    assert "users 5 → 20, duration 10 s → 60 s" in warning
    assert out.index("warning:") < out.index("endpoint")  # said before any verdict
