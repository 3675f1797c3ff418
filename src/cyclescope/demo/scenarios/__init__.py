"""Self-contained reproductions of real reference-cycle bugs, runnable inside cached venvs."""

from __future__ import annotations

import os

__all__ = ["scenario_path"]


def scenario_path(module: str) -> str:
    """The file of a scenario, to run as a script: ``"aiohttp_10535"`` or its full module name.

    Raises FileNotFoundError for a scenario that does not exist.
    """
    name = module.rsplit(".", 1)[-1]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    if not os.path.isfile(path) or module not in (name, f"{__name__}.{name}"):
        raise FileNotFoundError(f"no scenario {module!r} in {__name__}")
    return path
