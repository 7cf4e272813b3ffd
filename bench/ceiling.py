"""A trivial NNTP server with canned answers: the benchmark client's own ceiling.

It answers the workload's commands (MODE READER, GROUP, OVER, ARTICLE by
number and Message-ID, HDR Subject, LIST ACTIVE, POST, DATE, QUIT) from
answers built in advance from the same articles the workload posts, each
in one write, doing no other work. Run against it, the unchanged workload
(with every check) measures how fast the client itself can go: a figure of
a real server close to this ceiling is limited by the client, not by the
server.

It runs either in a child process (``python bench/ceiling.py ...``; the
default, like a real server: client and server each get a core) or inside
the benchmark's own event loop (client and server share one core, so that
ceiling is lower than the client's real one).
"""

from __future__ import annotations

import argparse
import asyncio
import re

from workload import PATH_HOST, Post, make_posts

CRLF = b"\r\n"
_MID = re.compile(rb"\r\nMessage-ID: (<[^>\r\n]*>)", re.I)


class Canned:
    """Every answer the workload can ask for, prebuilt."""

    def __init__(self, posts: list[Post], group: str) -> None:
        self.group = group
        self.count = len(posts)
        self.over: list[bytes] = [b""]
        self.hdr: list[bytes] = [b""]
        self.articles: list[bytes] = [b""]
        self.numbers: dict[bytes, int] = {}
        for number, post in enumerate(posts, 1):
            raw = post.raw(group)
            head, _, _ = raw.partition(b"\r\n\r\n")
            xref = f"Xref: {PATH_HOST} {group}:{number}"
            self.over.append(
                "\t".join((str(number), post.subject, post.from_, "Fri, 27 Nov 2026 00:00:00 +0000",
                           post.message_id, post.references, str(len(raw) + len(xref) + 2),
                           str(post.lines), xref)).encode() + CRLF)
            self.hdr.append(f"{number} {post.subject}".encode() + CRLF)
            self.articles.append(
                head + CRLF + xref.encode() + CRLF + CRLF + post.body_wire + b".\r\n")
            self.numbers[post.message_id.encode()] = number
        self.whole_over = b"224 Overview information follows\r\n" + b"".join(self.over[1:]) + b".\r\n"
        self.whole_hdr = b"225 Headers follow\r\n" + b"".join(self.hdr[1:]) + b".\r\n"
        self.group_line = f"211 {self.count} 1 {self.count} {group}\r\n".encode()
        self.active = f"215 list follows\r\n{group} {self.count} 1 y\r\n.\r\n".encode()

    def range(self, arg: bytes) -> tuple[int, int]:
        low, _, high = arg.partition(b"-")
        lo = max(1, int(low))
        hi = min(self.count, int(high)) if high else self.count
        return lo, hi

    def answer(self, line: bytes) -> bytes:
        words = line.split()
        if not words:
            return b""
        verb = words[0].upper()
        try:
            if verb in (b"OVER", b"XOVER"):
                if words[1] == b"1-":
                    return self.whole_over
                lo, hi = self.range(words[1])
                return b"224 Overview information follows\r\n" + b"".join(self.over[lo:hi + 1]) + b".\r\n"
            if verb == b"ARTICLE":
                arg = words[1]
                number = self.numbers[arg] if arg.startswith(b"<") else int(arg)
                if not 1 <= number <= self.count:
                    return b"423 No such article\r\n"
                shown = b"0" if arg.startswith(b"<") else arg
                return b"220 " + shown + b" " + self.over[number].split(b"\t")[4] + b"\r\n" \
                    + self.articles[number]
            if verb == b"GROUP":
                return self.group_line
            if verb in (b"HDR", b"XHDR"):
                if words[2] == b"1-":
                    return self.whole_hdr
                lo, hi = self.range(words[2])
                return b"225 Headers follow\r\n" + b"".join(self.hdr[lo:hi + 1]) + b".\r\n"
            if verb == b"LIST":
                return self.active
            if verb == b"MODE":
                return b"200 canned server ready (posting ok)\r\n"
            if verb == b"DATE":
                return b"111 20261127000000\r\n"
        except (IndexError, ValueError, KeyError):
            return b"501 Syntax error\r\n"
        return b"500 What?\r\n"


class CannedProtocol(asyncio.Protocol):
    def __init__(self, canned: Canned) -> None:
        self.canned = canned
        self.buf = b""
        self.posting = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"200 canned server ready (posting ok)\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            if self.posting:
                end = buf.find(b"\r\n.\r\n")
                if end < 0:
                    break
                article, buf = buf[: end + 2], buf[end + 5:]
                match = _MID.search(b"\r\n" + article)
                mid = match.group(1) if match else b"<none@canned>"
                out.append(b"240 Article received " + mid + b"\r\n")
                self.posting = False
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                break
            line, buf = buf[:end], buf[end + 2:]
            verb = line[:5].upper()
            if verb == b"POST":
                out.append(b"340 Send article\r\n")
                self.posting = True
            elif verb.startswith(b"QUIT"):
                out.append(b"205 Bye\r\n")
                self.transport.write(b"".join(out))  # type: ignore[union-attr]
                self.transport.close()  # type: ignore[union-attr]
                return
            else:
                out.append(self.canned.answer(line))
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]


async def start_canned(posts: list[Post], group: str, port: int) -> asyncio.AbstractServer:
    canned = Canned(posts, group)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: CannedProtocol(canned), "127.0.0.1", port,
                                    reuse_address=True, backlog=4096)


def main() -> None:
    parser = argparse.ArgumentParser(description="canned NNTP server (the client's ceiling)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--articles", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()

    async def run() -> None:
        posts = make_posts(args.articles, args.seed, args.run_id)
        server = await start_canned(posts, args.group, args.port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
