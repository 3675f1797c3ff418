"""Comparing distribution versions without the ``packaging`` dependency.

Enough of PEP 440 for "is this installed release before that one": the release
segment (``3.11.14``, trailing zeros ignored, an epoch or a ``v`` prefix
skipped), and whether the version is a pre-release or a development build,
which sort before their release (``3.11.14rc1`` < ``3.11.14``); post-releases
and local versions count as their release.
"""

from __future__ import annotations

import re

__all__ = ["parse_version", "is_before"]

_VERSION = re.compile(
    r"""\s*v?(?:\d+!)?                       # optional "v" and epoch
        (?P<release>\d+(?:\.\d+)*)           # release segment
        (?P<rest>[^+]*)                      # pre / post / dev parts (local part dropped)
    """,
    re.VERBOSE,
)
_PRE_OR_DEV = re.compile(r"[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev)(?![a-z])", re.IGNORECASE)


def parse_version(version: str) -> tuple[tuple[int, ...], bool] | None:
    """``(release, is a pre-release or dev build)`` of a version, or None when it has no release.

    ``"3.11.14rc1"`` gives ``((3, 11, 14), True)``; ``"3.12.0"`` gives ``((3, 12), False)``.
    """
    found = _VERSION.match(version) if isinstance(version, str) else None
    if found is None:
        return None
    release = [int(part) for part in found["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    return tuple(release), _PRE_OR_DEV.match(found["rest"]) is not None


def is_before(version: str, bound: str) -> bool | None:
    """Whether ``version`` sorts before the release ``bound``; None when either cannot be read."""
    mine, theirs = parse_version(version), parse_version(bound)
    if mine is None or theirs is None:
        return None
    (release, early), (bound_release, bound_early) = mine, theirs
    if release != bound_release:
        return release < bound_release
    return early and not bound_early
