"""A first end-to-end check: post and read back over TCP (RFC 3977 6.3.1, 6.2.1)."""


async def test_post_then_article_byte_exact(client):
    status = await client.post(
        "From: a@example.com\nNewsgroups: local.test\nSubject: hi\nMessage-ID: <one@example.com>\n\nbody\n..dots\n"
    )
    assert status.startswith("240"), status
    assert (await client.cmd("GROUP local.test")) == "211 1 1 1 local.test"
    assert (await client.cmd("ARTICLE 1")).startswith("220 1 <one@example.com>")
    lines = await client.block()
    assert lines[-2:] == ["body", "..dots"]
    assert "Xref: test.example local.test:1" in lines
