"""The tutorials run as written: their Python blocks are executed in order, in a temp dir.

The default tier runs them with tiny budgets (each budget constant of a page's first block is
replaced; a renamed constant fails here instead of silently running the full budget); the slow
tier runs them exactly as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
TINY = {
    "train-and-resume.md": {"TOTAL_STEPS": "400"},
    "evaluate-sb3.md": {
        "TRAIN_STEPS": "64",
        "PPO_KWARGS": '{"n_steps": 64, "n_epochs": 1}',
        "EPISODES": "1",
        "POINTS_PER_DIM": "2",
        "SEEDS": "[0, 1]",
    },
    "offline-dataset.md": {"BEHAVIOUR_STEPS": "200", "EPISODES": "2", "GRADIENT_STEPS": "20"},
    "robust-tabular.md": {"TOTAL_STEPS": "200"},
}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def tutorial_code(page: str, budgets: dict[str, str] | None = None) -> str:
    """The page's Python blocks joined in order, with ``NAME = ...`` budget lines replaced."""
    code = "\n".join(BLOCK.findall((TUTORIALS / page).read_text()))
    for name, value in (budgets or {}).items():
        code, count = re.subn(rf"^{name} = [^#\n]*", f"{name} = {value}  ", code, count=1, flags=re.M)
        assert count == 1, f"{page} no longer defines the budget {name}"
    return code


def _run(page: str, code: str) -> None:
    exec(compile(code, str(TUTORIALS / page), "exec"), {"__name__": "__tutorial__"})


def test_every_tutorial_is_tested():
    assert sorted(p.name for p in TUTORIALS.glob("*.md")) == sorted(TINY)


@pytest.mark.parametrize("page", sorted(TINY))
def test_tutorial_runs_with_tiny_budgets(page):
    _run(page, tutorial_code(page, TINY[page]))


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(TINY))
def test_tutorial_runs_as_written(page):
    _run(page, tutorial_code(page))
