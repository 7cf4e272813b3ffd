"""Wildmat matching (RFC 3977 section 4), linear in the text and the pattern.

A wildmat is a comma-separated list of patterns; a pattern prefixed with
``!`` negates. The *last* pattern that matches decides (section 4.2), so
``*,!local.*`` means "everything but local". ``*`` matches any run of
characters, ``?`` exactly one. As INN does, ``[...]`` character classes
and ``\\`` escapes are also accepted.

Wildmats come from anyone (XPAT, LIST ACTIVE, NEWNEWS), so matching must
not backtrack: a regex ``.*a.*a.*a...b`` takes time exponential in the
stars. Here each pattern is cut at its stars into segments of fixed width
(literals, ``?`` and classes are one character each). The first segment
must match at the start, the last at the end, and each middle one is
searched leftmost after the previous one. Taking the leftmost place is
always safe, since a later segment can only gain from more room: this is
the classic glob matcher that remembers only the last ``*``, run one
segment at a time. A segment is a fixed-width regex, which finds its
leftmost place in O(len(text) x len(segment)); a whole pattern costs
O(len(text) x len(pattern)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

__all__ = ["compile_wildmat", "wildmat_match", "WildmatError", "MAX_WILDMAT", "MAX_PATTERNS"]

MAX_WILDMAT = 512  # characters; a command line cannot carry more (RFC 3977 3.1)
MAX_PATTERNS = 64  # comma-separated patterns in one wildmat


class WildmatError(ValueError):
    """A wildmat that cannot be used (unbalanced ``[``, a reversed range, too long)."""


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run between stars: fixed width; ``literal`` when it holds no ``?`` or class."""

    regex: re.Pattern[str]
    width: int
    literal: str | None

    def at(self, text: str, pos: int) -> bool:
        if self.literal is not None:
            return text.startswith(self.literal, pos)
        return self.regex.match(text, pos) is not None

    def find(self, text: str, pos: int, end: int) -> int:
        """Where the leftmost match within ``text[pos:end]`` ends, or -1."""
        if self.literal is not None:
            found = text.find(self.literal, pos, end)
            return found + self.width if found >= 0 else -1
        match = self.regex.search(text, pos, end)
        return match.end() if match is not None else -1


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One pattern cut at its stars: ``segments[0] * segments[1] * ... * segments[-1]``."""

    segments: tuple[_Segment, ...]
    width: int  # the fewest characters a match needs

    def match(self, text: str) -> bool:
        segments = self.segments
        if len(segments) == 1:
            return len(text) == self.width and segments[0].at(text, 0)
        if len(text) < self.width or not segments[0].at(text, 0):
            return False
        last = segments[-1]
        pos, end = segments[0].width, len(text) - last.width
        for segment in segments[1:-1]:
            if segment.width:
                pos = segment.find(text, pos, end)
                if pos < 0:
                    return False
        return last.at(text, end)

    def predicate(self) -> Callable[[str], bool]:
        """``match``, or a plain string test for the common literal shapes (faster per call)."""
        segs = self.segments
        if not all(seg.literal is not None for seg in segs) or len(segs) > 2:
            return self.match
        if len(segs) == 1:
            return segs[0].literal.__eq__  # type: ignore[union-attr,return-value]
        prefix, suffix = segs[0].literal or "", segs[1].literal or ""
        if not suffix:
            return (lambda text: True) if not prefix else (lambda text: text.startswith(prefix))
        width = self.width
        return lambda text: len(text) >= width and text.startswith(prefix) and text.endswith(suffix)


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The ``[...]`` starting at ``pattern[i]`` as a regex class; and the index after it."""
    j = i + 1
    negate = pattern[j : j + 1] == "^"
    if negate:
        j += 1
    start = j
    if pattern[j : j + 1] == "]":  # a "]" first in the class is a literal
        j += 1
    end = pattern.find("]", j)
    if end < 0:
        raise WildmatError(f"unbalanced '[' in {ascii(pattern[:40])}")
    body, items, k = pattern[start:end], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if low > high:
                raise WildmatError(f"reversed range {ascii(low + '-' + high)} in a class")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            k += 3
        else:
            items.append(re.escape(body[k]))
            k += 1
    return f"[{'^' if negate else ''}{''.join(items)}]", end + 1


def _compile_pattern(pattern: str) -> _Pattern:
    segments: list[list[str]] = [[]]  # each item a regex for one character
    literal: list[bool] = [True]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            segments.append([])
            literal.append(True)
        elif ch == "?":
            segments[-1].append(".")
            literal[-1] = False
        elif ch == "\\" and i + 1 < n:
            i += 1
            segments[-1].append(re.escape(pattern[i]))
        elif ch == "[":
            item, i = _class(pattern, i)
            segments[-1].append(item)
            literal[-1] = False
            continue
        else:
            segments[-1].append(re.escape(ch))
        i += 1
    built = tuple(
        _Segment(re.compile("".join(items), re.S), len(items),
                 _unescape(items) if plain else None)
        for items, plain in zip(segments, literal)
    )
    return _Pattern(built, sum(s.width for s in built))


def _unescape(items: list[str]) -> str:
    """The characters that a run of ``re.escape``d single characters stands for."""
    return "".join(item[-1] for item in items)


def _split(wildmat: str) -> list[str]:
    """Split on commas that are not escaped or inside a character class."""
    parts, current, in_class, i = [], [], False, 0
    while i < len(wildmat):
        ch = wildmat[i]
        if ch == "\\" and i + 1 < len(wildmat) and not in_class:
            current.append(wildmat[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            # A ']' first in the class (or right after '^') is a literal, as in _class.
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
    """Return a predicate name -> bool for ``wildmat``; WildmatError if it cannot be used."""
    if len(wildmat) > MAX_WILDMAT:
        raise WildmatError(f"wildmat too long (max {MAX_WILDMAT} characters)")
    parts = _split(wildmat)
    if len(parts) > MAX_PATTERNS:
        raise WildmatError(f"too many patterns in a wildmat (max {MAX_PATTERNS})")
    rules: list[tuple[bool, Callable[[str], bool]]] = []
    for part in parts:
        negate = part.startswith("!")
        if negate:
            part = part[1:]
        rules.append((not negate, _compile_pattern(part).predicate()))
    rules.reverse()
    if len(rules) == 1 and rules[0][0]:
        return rules[0][1]

    def match(name: str) -> bool:
        for verdict, test in rules:
            if test(name):
                return verdict
        return False

    return match


def wildmat_match(wildmat: str, name: str) -> bool:
    return compile_wildmat(wildmat)(name)
