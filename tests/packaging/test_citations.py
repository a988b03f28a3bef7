"""Code cites papers and in-repo ``docs/`` only: no documents outside the repository
(design notes such as ``algorithms.md``) and no issue-tracker numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the files held to the rule (extend as more of the tree is cleaned).
CHECKED = sorted(
    [*ROOT.glob("agents/*.py"), *ROOT.glob("conf/agent/*.yaml")]
    + [
        ROOT / "rlrobust" / "core" / f"{name}.py"
        for name in ("agent_base", "critics", "risk", "losses", "targets", "networks", "optim")
    ]
)
OUTSIDE = re.compile(r"algorithms\.md|style-and-reliability|\.\./shared|\bissue\s+#?\d+", re.IGNORECASE)


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_of_documents_outside_the_repository(path):
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "cite the paper or a page under docs/ instead:\n" + "\n".join(hits)
