"""Who may read and post where: the [[access]] rules of the config, as plain code.

Rules are checked last-to-first and the first whose wildmat matches the
group decides (the last matching rule wins, as in a wildmat list). A
session is described only by facts the server established itself:
whether it comes from loopback and the role of its authenticated account.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import AccessRule
from .wildmat import compile_wildmat

TRUSTED = frozenset({"staff", "mvp"})


@dataclass(frozen=True, slots=True)
class Who:
    loopback: bool
    role: str | None  # None when not authenticated; else member, staff or mvp


def level_allows(level: str, who: Who) -> bool:
    if level == "anyone":
        return True
    if level == "loopback":
        return who.loopback or who.role is not None
    if level == "authenticated":
        return who.role is not None
    if level == "trusted":
        return who.role in TRUSTED
    return False


class AccessPolicy:
    def __init__(self, rules: tuple[AccessRule, ...]) -> None:
        self._rules = [(compile_wildmat(r.groups), r) for r in reversed(rules)]

    def _rule(self, group: str) -> AccessRule | None:
        for match, rule in self._rules:
            if match(group):
                return rule
        return None

    def can_read(self, group: str, who: Who) -> bool:
        rule = self._rule(group)
        return rule is not None and level_allows(rule.read, who)

    def can_post(self, group: str, who: Who) -> bool:
        rule = self._rule(group)
        return rule is not None and level_allows(rule.post, who)

    def may_post_somewhere(self, who: Who) -> bool:
        return any(level_allows(rule.post, who) for _, rule in self._rules)

    def login_would_help(self, who: Who) -> bool:
        """True if an unauthenticated session could gain rights by logging in (480, not 502)."""
        return who.role is None
