"""The one reader of the experiment presets (``conf/experiment/<name>.yaml``) for the benchmarks.

A benchmark that trains "the preset" passes these values to ``rlrobust.train``, so that no
benchmark keeps a second copy of them. This reads the YAML file as written, not composed by
Hydra: its ``defaults:`` list (which agent and env) is not applied — the benchmark names the agent
and env itself — and the presets use no interpolations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRESETS = Path(__file__).resolve().parent.parent / "conf" / "experiment"


def load_preset(name: str) -> dict[str, Any]:
    """The whole preset ``conf/experiment/<name>.yaml`` as a dict; an unknown name lists the presets."""
    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        from rlrobust.core.errors import ConfigError, choices

        raise ConfigError(
            f"unknown experiment preset {name!r}; valid: {choices(p.stem for p in PRESETS.glob('*.yaml'))}"
        )
    return dict(yaml.safe_load(path.read_text()))


def preset_agent(name: str) -> dict[str, Any]:
    """The preset's ``agent:`` block ({} for ``none``: the agent's defaults)."""
    return {} if name == "none" else dict(load_preset(name)["agent"])
