"""Per-connection state and command dispatch.

A Session knows the selected group, the current article number, whether
the client asked for CAPABILITIES (which changes the names in LIST
OVERVIEW.FMT, as INN does) and who the client is. It does no I/O: the
server feeds it commands and writes the Responses it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from storage import GroupInfo, Poster, Store

from .commands import load_all
from .config import Settings
from .protocol import Command, NNTPError, Response

log = logging.getLogger("nntpd.session")

COMMANDS = load_all()


@dataclass
class Session:
    store: Store
    settings: Settings
    peer: str = ""
    group: GroupInfo | None = None
    article_number: int | None = None
    saw_capabilities: bool = False
    quitting: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def posting_allowed(self) -> bool:
        return True

    def poster_for(self, article: object) -> Poster:
        """Who is posting; anonymous posters are known by their From address."""
        from .commands.posting import anonymous_poster

        return anonymous_poster(getattr(article, "from_"))

    def require_group(self) -> GroupInfo:
        if self.group is None:
            raise NNTPError(412, "No newsgroup selected")
        return self.group

    def require_current(self) -> tuple[GroupInfo, int]:
        group = self.require_group()
        if self.article_number is None:
            raise NNTPError(420, "Current article number is invalid")
        return group, self.article_number

    async def dispatch(self, cmd: Command) -> Response:
        spec = COMMANDS.get(cmd.verb)
        if spec is None:
            return Response(500, f"Unknown command {cmd.verb[:40]}")
        try:
            return await spec.handler(self, cmd.args)
        except NNTPError as exc:
            return Response(exc.code, exc.text)
