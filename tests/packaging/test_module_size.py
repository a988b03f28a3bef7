"""Modules stay small enough to read: one over 500 lines says why at its top.

The reason goes in the module docstring as a sentence containing "500 lines" (e.g. "Over 500
lines, on purpose: ..."), so a reader meets it before the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("rlrobust", "agents", "envs", "benchmarks", "scripts")
LIMIT = 500


def _modules() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_there_are_modules_to_check():
    assert len(_modules()) > 50


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if len(p.read_text().splitlines()) > LIMIT],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_a_long_module_states_why_at_its_top(path):
    lines = len(path.read_text().splitlines())
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "500 lines" in docstring, (
        f"{path.relative_to(ROOT)} has {lines} lines (limit {LIMIT}); split it, or say at the top of its "
        "docstring why it is longer (a sentence containing '500 lines')"
    )
