"""Command handlers, one function per verb, grouped by topic.

``@command("GROUP", "GROUP group")`` registers a handler; HELP is derived
from the registry so the list of commands is written down once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from ..protocol import Response

if TYPE_CHECKING:
    from ..session import Session

Handler = Callable[["Session", tuple[str, ...]], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    verb: str
    syntax: str
    handler: Handler


REGISTRY: dict[str, CommandSpec] = {}


def command(verb: str, syntax: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REGISTRY[verb] = CommandSpec(verb, syntax, handler)
        return handler

    return register


def load_all() -> dict[str, CommandSpec]:
    """Import every handler module so their commands register."""
    from . import auth, listing, overview, posting, reader, session_cmds, transit  # noqa: F401

    return REGISTRY
