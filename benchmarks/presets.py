"""The one reader of the experiment presets (``conf/experiment/<name>.yaml``) for the benchmarks.

A benchmark that trains "the preset" reads it here, so that it runs exactly what
``python scripts/train.py experiment=<name>`` runs and no benchmark keeps a second copy of a
preset's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRESETS = Path(__file__).resolve().parent.parent / "conf" / "experiment"


def load_preset(name: str) -> dict[str, Any]:
    """The whole preset ``conf/experiment/<name>.yaml`` as a dict."""
    return dict(yaml.safe_load((PRESETS / f"{name}.yaml").read_text()))


def preset_agent(name: str) -> dict[str, Any]:
    """The preset's ``agent:`` block ({} for ``none``: the agent's defaults)."""
    return {} if name == "none" else dict(load_preset(name)["agent"])
