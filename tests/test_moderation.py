"""Moderated groups (status m) for member and MVP posts, and the operator's moderation queue
(`nntpd queue list` / `approve ID` / `reject ID`) through the CLI on the server's own SQLite
file. Issue 14 section 6: before this, only the PostgreSQL module exercised the queue.

RFC 3977 6.3.1.2 lets a server accept a POST (240) that it does not publish at once; here
a held post gets no article number until it is approved (RFC 3977 6.1.1.2: GROUP's
count, low and high reflect only articles in the group).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Client, connected, running
from nntp_helpers import run_cli as cli
from nntpd.config import AuthSettings, Settings
from nntpd.passwords import hash_password

PASSWORD = "mod-password"


@pytest.fixture(autouse=True)
def no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep ./nntpd.toml and NNTPD_CONFIG of the developer's machine out of the CLI's way.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNTPD_CONFIG", raising=False)


def article(mid: str, from_: str, groups: str = "local.mod") -> str:
    return f"From: {from_}\nNewsgroups: {groups}\nSubject: about {mid}\nMessage-ID: {mid}\n\nbody\n"


async def over(client: Client, rng: str) -> tuple[str, list[str]]:
    status = await client.cmd(f"OVER {rng}")
    return status, (await client.block() if status.startswith("224") else [])


async def test_member_and_mvp_posts_are_held_until_the_cli_approves_them(tmp_path):
    """A member's and an MVP's post to a moderated group are accepted as held (240 "held for
    moderation"), absent from GROUP, OVER, STAT and NEWNEWS; `queue list` shows them;
    `queue approve ID` publishes one with the next number (MVP role kept), `queue reject ID`
    drops one for good, and an unknown ID is a one-line error."""
    settings = Settings(auth=AuthSettings(failure_delay=0.0))
    async with running(tmp_path, settings) as handle:
        for name, role in (("max", "member"), ("mia", "mvp")):
            await handle.store.add_account(name, email=f"{name}@example.com",
                                           password_hash=hash_password(PASSWORD, n=2**10))
            if role != "member":
                await handle.store.set_role(name, role, changed_by="test")
        assert "created local.mod (m)" in await cli(handle.url, "group", "create", "local.mod", "--moderated")
        async with connected(handle, "max", PASSWORD) as member, \
                connected(handle, "mia", PASSWORD) as mvp, connected(handle) as reader:
            posts = [(member, "<member1@x>", "max@example.com"), (mvp, "<mvp1@x>", "mia@example.com"),
                     (member, "<member2@x>", "max@example.com")]
            for poster, mid, from_ in posts:
                status = await poster.post(article(mid, from_))
                assert status.startswith("240") and "held for moderation" in status, status
            assert await reader.cmd("GROUP local.mod") == "211 0 1 0 local.mod"
            assert (await over(reader, "1-"))[0].startswith("423")
            for _, mid, _ in posts:
                assert (await reader.cmd(f"STAT {mid}")).startswith("430"), mid
            assert (await reader.cmd("NEWNEWS local.mod 20000101 000000 GMT")).startswith("230")
            assert await reader.block() == []

            held = json.loads(await cli(handle.url, "queue", "list", "--json"))
            assert [(h["message_id"], h["newsgroups"], h["from"]) for h in held] == [
                (mid, "local.mod", from_) for _, mid, from_ in posts]
            text = (await cli(handle.url, "queue", "list")).splitlines()
            assert [line.split("\t")[0] for line in text] == [str(h["id"]) for h in held]
            assert [line.split("\t")[2:] for line in text] == [
                ["local.mod", from_, f"about {mid}"] for _, mid, from_ in posts]
            ids = {h["message_id"]: h["id"] for h in held}

            assert (await cli(handle.url, "queue", "approve", str(ids["<mvp1@x>"]))
                    == "approved <mvp1@x> -> local.mod:1\n")
            assert (await cli(handle.url, "queue", "approve", str(ids["<member1@x>"]))
                    == "approved <member1@x> -> local.mod:2\n")
            assert (await cli(handle.url, "queue", "reject", str(ids["<member2@x>"]))
                    == f"rejected {ids['<member2@x>']}\n")
            assert await cli(handle.url, "queue", "list") == ""
            assert "no held article" in await cli(handle.url, "queue", "reject", "999999", ok=False)
            assert "no held article" in await cli(handle.url, "queue", "approve",
                                                  str(ids["<member2@x>"]), ok=False)

            assert await reader.cmd("GROUP local.mod") == "211 2 1 2 local.mod"
            status, lines = await over(reader, "1-")
            assert status.startswith("224"), status
            fields = [line.split("\t") for line in lines]
            assert [(f[0], f[1], f[4]) for f in fields] == [
                ("1", "about <mvp1@x>", "<mvp1@x>"), ("2", "about <member1@x>", "<member1@x>")]
            assert [f[-1] for f in fields] == ["X-Poster-Role: mvp", ""]
            assert await reader.cmd("STAT <mvp1@x>") == "223 0 <mvp1@x>"
            assert await reader.cmd("STAT <member1@x>") == "223 0 <member1@x>"
            assert (await reader.cmd("STAT <member2@x>")).startswith("430")
            assert (await reader.cmd("NEWNEWS local.mod 20000101 000000 GMT")).startswith("230")
            assert sorted(await reader.block()) == ["<member1@x>", "<mvp1@x>"]
