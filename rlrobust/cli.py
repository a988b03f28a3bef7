"""Command-line error reporting shared by the scripts (``scripts/train.py``, ``evaluate.py``,
``make_dataset.py``).

A library error (:class:`~rlrobust.core.errors.RlrobustError`) already says what was wrong and
what is valid, so on the command line it is printed as one message and the process exits with
status 1; ``HYDRA_FULL_ERROR=1`` (Hydra's convention) or the config flag ``debug=true`` shows the
full traceback instead. Ctrl-C exits with status 130 after one line. Other exceptions are bugs
and keep their traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

from rlrobust.core.errors import RlrobustError


def _full_errors(debug: bool) -> bool:
    return bool(debug) or os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextlib.contextmanager
def readable_errors(debug: bool = False) -> Iterator[None]:
    """Turn library errors raised in the block into one line on stderr and exit status 1.

    ``SystemExit`` passes through Hydra's job runner (which reports ``Exception`` subclasses with
    a traceback), so this works inside a ``@hydra.main`` function.
    """
    try:
        yield
    except RlrobustError as exc:
        if _full_errors(debug):
            traceback.print_exc()
        else:
            print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        if _full_errors(debug):
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def register_resolvers() -> None:
    """OmegaConf resolvers the scripts' configs use: ``${rlrobust.suites:}`` (every suite, one line
    each) and ``${rlrobust.agents:}`` for the ``--help`` templates, which list choices that are not
    config groups, and ``${rlrobust.hydra_dir:<run_dir>,<stamp>}``, Hydra's job folder: inside the
    run dir when one is given (``<run_dir>/hydra/<stamp>``, one per call, so a refused resume
    rewrites nothing of the run's), else ``outputs/<stamp>``."""
    from omegaconf import OmegaConf

    from rlrobust.core.registry import list_agents
    from rlrobust.envs.suites import describe_suites

    OmegaConf.register_new_resolver("rlrobust.suites", describe_suites, replace=True)
    OmegaConf.register_new_resolver("rlrobust.agents", lambda: ", ".join(list_agents()), replace=True)
    OmegaConf.register_new_resolver(
        "rlrobust.hydra_dir",
        lambda run_dir, stamp: f"{run_dir}/hydra/{stamp}" if run_dir else f"outputs/{stamp}",
        replace=True,
    )
