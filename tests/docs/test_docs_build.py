"""The documentation site builds in strict mode, and a dangling cross-reference fails the build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
yaml = pytest.importorskip("yaml")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_the_site_builds_strictly(tmp_path):
    done = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    for page in (
        "index.html",
        "agents/iqn/index.html",
        "reference/agents/index.html",
        "benchmarks/index.html",
    ):
        assert (tmp_path / "site" / page).exists(), page
    # The agent page includes its config file and its benchmark section (pymdownx.snippets).
    iqn = (tmp_path / "site" / "agents" / "iqn" / "index.html").read_text()
    assert "target_update_interval" in iqn and "IQN on CartPole-v1: learning" in iqn


def test_a_dangling_reference_fails_the_build_naming_it(tmp_path):
    # The site's own configuration (plugins, handlers, strictness) on a one-page site.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Broken\n\nSee [the trainer][rlrobust.core.trainer.NoSuchTrainer].\n")
    config.update(docs_dir=str(docs), nav=["index.md"])
    python = config["plugins"][2]["mkdocstrings"]["handlers"]["python"]
    python["paths"] = [str(ROOT)]
    python["options"]["extensions"] = [str(ROOT / e) for e in python["options"]["extensions"]]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "rlrobust.core.trainer.NoSuchTrainer" in done.stdout + done.stderr
