"""TLS: STARTTLS on the plain port (RFC 4642) and the implicit TLS port (RFC 8143).

A self-signed certificate for localhost/127.0.0.1 is made once per module
with the openssl command (tests skip without it). The raw client upgrades
with StreamWriter.start_tls; nntplib's blocking calls run in a thread
because the server runs in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest

from conftest import Client, ServerHandle, connected, free_port, running
from nntpd.config import AuthSettings, Settings, TLSSettings
from nntpd.passwords import hash_password
from tls_util import client_context, make_certificate

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

PASSWORD = "tls-password-1"
ARTICLE = (b"From: Alice <alice@example.com>\r\nNewsgroups: local.test\r\n"
           b"Subject: over TLS\r\nMessage-ID: <%s@example.com>\r\n\r\nsecret body\r\n.dotted\r\n")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return client_context(certificate[0])


@asynccontextmanager
async def serving(tmp_path: Path, certificate: tuple[Path, Path] | None, *,
                  loopback_is_secure: bool = False) -> AsyncIterator[ServerHandle]:
    """A server whose loopback is not trusted for passwords; TLS on when a certificate is given."""
    tls = TLSSettings(certificate=str(certificate[0]), key=str(certificate[1])) if certificate else TLSSettings()
    settings = Settings(tls=tls, auth=AuthSettings(loopback_is_secure=loopback_is_secure, failure_delay=0.0))
    tls_port = free_port()
    async with running(tmp_path, settings=settings, tls_port=tls_port) as handle:
        handle.tls_port = tls_port  # type: ignore[attr-defined]
        await handle.store.add_account("alice", email="alice@example.com", display_name="Alice",
                                       password_hash=hash_password(PASSWORD, n=2**10))
        yield handle


@asynccontextmanager
async def connected_tls(handle: ServerHandle, context: ssl.SSLContext) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", handle.tls_port, ssl=context, server_hostname="localhost")  # type: ignore[attr-defined]
    client = Client(reader, writer)
    try:
        client.greeting = await client.line()
        yield client
    finally:
        await client.close()


async def capabilities(client: Client) -> list[str]:
    status = await client.cmd("CAPABILITIES")
    assert status.startswith("101"), status
    return await client.block()


async def login(client: Client) -> str:
    status = await client.cmd("AUTHINFO USER alice")
    if not status.startswith("381"):
        return status
    return await client.cmd(f"AUTHINFO PASS {PASSWORD}")


async def starttls(client: Client, context: ssl.SSLContext) -> None:
    status = await client.cmd("STARTTLS")
    assert status.startswith("382"), status
    await asyncio.wait_for(client.writer.start_tls(context, server_hostname="localhost"), 10)


async def assert_alive(handle: ServerHandle) -> None:
    async with connected(handle) as client:
        assert client.greeting.startswith("20")
        assert (await client.cmd("DATE")).startswith("111")


# -- STARTTLS (RFC 4642) ----------------------------------------------------------


async def test_starttls_upgrade_enables_authinfo(tmp_path, certificate, tls_client_context):
    """RFC 4642 2.1/2.2.2 + RFC 4643 2.2: STARTTLS advertised in clear, 382, handshake; then no
    STARTTLS in CAPABILITIES and AUTHINFO, refused with 483 before, works."""
    async with serving(tmp_path, certificate) as handle, connected(handle) as client:
        caps = await capabilities(client)
        assert "STARTTLS" in caps
        assert [c for c in caps if c.split()[0] == "AUTHINFO"] == ["AUTHINFO"]
        assert (await client.cmd("AUTHINFO USER alice")).startswith("483")
        await starttls(client, tls_client_context)
        ssl_object = client.writer.get_extra_info("ssl_object")
        assert ssl_object is not None and ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        caps = await capabilities(client)
        assert "STARTTLS" not in caps
        assert "AUTHINFO USER SASL" in caps
        assert (await login(client)).startswith("281")
        assert (await client.cmd("DATE")).startswith("111")


async def test_starttls_twice_502(tmp_path, certificate, tls_client_context):
    """RFC 4642 2.2.2: STARTTLS while a TLS session is active MUST get 502."""
    async with serving(tmp_path, certificate) as handle, connected(handle) as client:
        await starttls(client, tls_client_context)
        assert (await client.cmd("STARTTLS")).startswith("502")
        assert (await client.cmd("DATE")).startswith("111")


async def test_starttls_after_authentication_502(tmp_path, certificate, tls_client_context):
    """RFC 4642 2.1/2.2.1: after authentication STARTTLS is not advertised and is answered 502."""
    async with serving(tmp_path, certificate, loopback_is_secure=True) as handle, connected(handle) as client:
        assert "STARTTLS" in await capabilities(client)
        assert (await login(client)).startswith("281")
        assert "STARTTLS" not in await capabilities(client)
        assert (await client.cmd("STARTTLS")).startswith("502")
        assert (await client.cmd("DATE")).startswith("111")


async def test_starttls_forgets_selected_group(tmp_path, certificate, tls_client_context):
    """RFC 4642 2.2.2: after the handshake the server MUST discard the current newsgroup and article number."""
    async with serving(tmp_path, certificate) as handle, connected(handle) as client:
        assert (await client.post(ARTICLE % b"before-tls")).startswith("240")
        assert (await client.cmd("GROUP local.test")).startswith("211")
        assert (await client.cmd("STAT")).startswith("223")
        await starttls(client, tls_client_context)
        assert (await client.cmd("STAT")).startswith("412")
        assert (await client.cmd("NEXT")).startswith("412")


async def test_starttls_discards_pipelined_cleartext(tmp_path, certificate, tls_client_context):
    """RFC 4642 2.2.1/5: STARTTLS MUST NOT be pipelined and cleartext sent before the handshake must
    not be acted on inside TLS (command injection): a command pipelined after STARTTLS is dropped
    (or the connection closed), never answered over TLS."""
    async with serving(tmp_path, certificate) as handle, connected(handle) as client:
        await client.send("STARTTLS\r\nDATE\r\n")
        assert (await client.line()).startswith("382")
        try:
            await asyncio.wait_for(client.writer.start_tls(tls_client_context, server_hostname="localhost"), 10)
            first = await client.cmd("CAPABILITIES")
        except (ConnectionError, ssl.SSLError, OSError):
            first = None  # closing the connection is an acceptable answer
        assert first is None or first.startswith("101"), f"injected DATE was answered over TLS: {first!r}"
        await assert_alive(handle)


async def test_failed_handshake_closes_connection(tmp_path, certificate):
    """RFC 4642 2.2.2: if TLS negotiation fails, the server closes the connection; others are unaffected."""
    async with serving(tmp_path, certificate) as handle:
        async with connected(handle) as client:
            assert (await client.cmd("STARTTLS")).startswith("382")
            await client.send(b"this is not a TLS ClientHello\r\n" * 4)
            data = await asyncio.wait_for(client.reader.read(), 10)
            assert not data.startswith(b"111") and b"\r\n1" not in data
        await assert_alive(handle)


async def test_starttls_not_configured_580(tmp_path):
    """RFC 4642 2.1/2.2.2: without TLS STARTTLS is not advertised and is answered 580; the session goes on."""
    async with serving(tmp_path, None) as handle, connected(handle) as client:
        assert "STARTTLS" not in await capabilities(client)
        assert (await client.cmd("STARTTLS")).startswith("580")
        assert (await client.cmd("DATE")).startswith("111")


async def test_no_tls_listener_without_certificate(tmp_path):
    """Spec: the TLS port needs certificate and key; without them nothing listens there."""
    async with serving(tmp_path, None) as handle:
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", handle.tls_port)  # type: ignore[attr-defined]
        await assert_alive(handle)


# -- implicit TLS (RFC 8143) ------------------------------------------------------


async def test_implicit_tls_port(tmp_path, certificate, tls_client_context):
    """RFC 8143 section 3/4: the TLS port greets 200 inside TLS; no STARTTLS there; AUTHINFO works."""
    async with serving(tmp_path, certificate) as handle, connected_tls(handle, tls_client_context) as client:
        assert client.greeting.startswith("200"), client.greeting
        assert client.writer.get_extra_info("ssl_object") is not None
        caps = await capabilities(client)
        assert "STARTTLS" not in caps
        assert "AUTHINFO USER SASL" in caps and "SASL PLAIN" in caps
        assert (await client.cmd("STARTTLS")).startswith("502")
        sasl = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {sasl}")).startswith("281")
        assert (await client.post(ARTICLE % b"implicit")).startswith("240")
        assert (await client.cmd("HEAD <implicit@example.com>")).startswith("221")
        head = await client.block()
        assert "Sender: Alice <alice@example.com>" not in head  # From is the account's own address


async def test_plaintext_on_tls_port_does_not_hurt(tmp_path, certificate, tls_client_context):
    """RFC 8143 4: the TLS port speaks only TLS; a cleartext client is dropped and the server goes on."""
    async with serving(tmp_path, certificate) as handle:
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.tls_port)  # type: ignore[attr-defined]
        writer.write(b"DATE\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        assert b"111" not in data
        writer.close()
        async with connected_tls(handle, tls_client_context) as client:
            assert client.greeting.startswith("200")
        await assert_alive(handle)


# -- nntplib (a real client) ------------------------------------------------------


def _nntplib_starttls(port: int, context: ssl.SSLContext) -> dict[str, object]:
    with nntplib.NNTP("127.0.0.1", port, usenetrc=False, timeout=10) as s:
        before = s.getcapabilities()
        s.starttls(context)
        after = s.getcapabilities()
        s.login("alice", PASSWORD, usenetrc=False)
        posted = s.post(ARTICLE % b"nntplib-starttls")
        _, info = s.head("<nntplib-starttls@example.com>")
        _, body = s.body("<nntplib-starttls@example.com>")
        return {"before": before, "after": after, "posted": posted,
                "head": info.lines, "body": body.lines}


def _nntplib_ssl(port: int, context: ssl.SSLContext) -> dict[str, object]:
    with nntplib.NNTP_SSL("127.0.0.1", port, ssl_context=context, usenetrc=False, timeout=10) as s:
        welcome = s.getwelcome()
        s.login("alice", PASSWORD, usenetrc=False)
        posted = s.post(ARTICLE % b"nntplib-ssl")
        _, count, first, last, name = s.group("local.test")
        _, overviews = s.over((first, last))
        _, body = s.body("<nntplib-ssl@example.com>")
        return {"welcome": welcome, "posted": posted, "count": count,
                "overviews": overviews, "body": body.lines}


async def test_nntplib_starttls_login_post_read(tmp_path, certificate, tls_client_context):
    """RFC 4642 + RFC 4643 2.3 with a real client: nntplib starttls(), login(), post() and read back."""
    async with serving(tmp_path, certificate) as handle:
        result = await asyncio.to_thread(_nntplib_starttls, handle.port, tls_client_context)
    assert "STARTTLS" in result["before"] and "STARTTLS" not in result["after"]
    assert "USER" in result["after"]["AUTHINFO"]
    assert str(result["posted"]).startswith("240")
    assert b"Subject: over TLS" in result["head"]
    assert result["body"] == [b"secret body", b".dotted"]


async def test_nntplib_ssl_port_login_post_read(tmp_path, certificate, tls_client_context):
    """RFC 8143 with a real client: nntplib NNTP_SSL on the TLS port, login(), post(), OVER and BODY."""
    async with serving(tmp_path, certificate) as handle:
        result = await asyncio.to_thread(_nntplib_ssl, handle.tls_port, tls_client_context)  # type: ignore[attr-defined]
    assert str(result["welcome"]).startswith("200")
    assert str(result["posted"]).startswith("240")
    assert result["count"] == 1
    (number, over), = result["overviews"]
    assert number == 1 and over["subject"] == "over TLS" and over["message-id"] == "<nntplib-ssl@example.com>"
    assert result["body"] == [b"secret body", b".dotted"]


async def test_nntplib_login_refused_in_cleartext(tmp_path, certificate):
    """RFC 4643 2.3.2: without TLS (loopback not trusted) nntplib's login fails with 483."""

    def attempt(port: int) -> str:
        with nntplib.NNTP("127.0.0.1", port, usenetrc=False, timeout=10) as s:
            try:
                s.login("alice", PASSWORD, usenetrc=False)
            except nntplib.NNTPError as exc:
                return str(exc)
            return "logged in"

    async with serving(tmp_path, certificate) as handle:
        outcome = await asyncio.to_thread(attempt, handle.port)
    assert outcome.startswith("483"), outcome
