"""Griffe extension for the docs build: render Sphinx roles in docstrings as inline code.

The docstrings use Sphinx-style roles (``:func:`evaluate```, ``:class:`~a.b.C```); mkdocstrings
renders Markdown, where they would show as ``:func:`` followed by code. This turns each role into
plain inline code with the name as written (the last component after a ``~``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    target = match.group(1)
    shown = target.rsplit(".", 1)[-1] if match.group(0).split("`", 1)[1].startswith("~") else target
    return f"`{shown}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` as ```target``` in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_replace, obj.docstring.value)


class PackageDirs(griffe.Extension):
    """Graft ``agents/`` and ``envs/`` into ``rlrobust`` as ``rlrobust.agents`` / ``rlrobust.envs``.

    setuptools' ``package-dir`` ships those top-level folders inside the ``rlrobust`` namespace;
    griffe's static analysis only sees the ``rlrobust/`` folder, so it is told here.
    """

    GRAFTS = {"agents": "agents", "envs": "envs"}

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "rlrobust":
            return
        for member, folder in self.GRAFTS.items():
            module = loader.load(folder, try_relative_path=False)
            pkg.set_member(member, module)
