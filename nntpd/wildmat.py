"""Wildmat matching (RFC 3977 section 4).

A wildmat is a comma-separated list of patterns; a pattern prefixed with
``!`` negates. The *last* pattern that matches decides (section 4.2), so
``*,!local.*`` means "everything but local". ``*`` matches any run of
characters, ``?`` exactly one. As INN does, ``[...]`` character classes
and ``\\`` escapes are also accepted. Patterns compile once to a regex.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

__all__ = ["compile_wildmat", "wildmat_match", "WildmatError"]


class WildmatError(ValueError):
    """A wildmat that cannot be parsed (unbalanced ``[``)."""


def _pattern_regex(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            j = i + 1
            if pattern[j : j + 1] == "^":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            end = pattern.find("]", j)
            if end < 0:
                raise WildmatError(f"unbalanced '[' in {pattern!r}")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _split(wildmat: str) -> list[str]:
    """Split on commas that are not escaped or inside a character class."""
    parts, current, in_class, i = [], [], False, 0
    while i < len(wildmat):
        ch = wildmat[i]
        if ch == "\\" and i + 1 < len(wildmat):
            current.append(wildmat[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            # A ']' first in the class (or right after '^') is a literal, as in _pattern_regex.
            j = i + 1
            if wildmat[j : j + 1] == "^":
                j += 1
            if wildmat[j : j + 1] == "]":
                j += 1
            current.append(wildmat[i:j])
            in_class = True
            i = j
            continue
        if ch == "]":
            in_class = False
        if ch == "," and not in_class:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


@lru_cache(maxsize=512)
def compile_wildmat(wildmat: str) -> Callable[[str], bool]:
    """Return a predicate name -> bool for ``wildmat``."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for part in _split(wildmat):
        negate = part.startswith("!")
        if negate:
            part = part[1:]
        rules.append((not negate, re.compile(_pattern_regex(part), re.S)))
    rules.reverse()

    def match(name: str) -> bool:
        for verdict, regex in rules:
            if regex.fullmatch(name):
                return verdict
        return False

    return match


def wildmat_match(wildmat: str, name: str) -> bool:
    return compile_wildmat(wildmat)(name)
