"""The small HTTP/1.1 client of `foot.kube.http` against scripted servers: every way an
answer can be framed, cut or delayed. (Against real kube-apiservers: tests/kube.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from foot.kube.http import HttpConnectionPool, HttpTransportError

Script = Callable[[bytes, int], Sequence[bytes] | None]
"""(request bytes, connection number) → the pieces to answer with, sent one by one (an empty
piece: close the connection there); None: close the connection without answering."""
CLOSE = b""


class ScriptedServer:
    """A TCP server that answers each request with what its script says."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                pieces = self.script(request, number)
                if pieces is None or not all(pieces):
                    for piece in pieces or ():
                        writer.write(piece)
                    break
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(script)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def pool_for(server: ScriptedServer, **options: object) -> AsyncIterator[HttpConnectionPool]:
    pool = HttpConnectionPool(server.url, ssl_context=None, **options)  # type: ignore[arg-type]
    try:
        yield pool
    finally:
        await pool.close()


def answer(status: int, body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_request_line_headers_and_body_are_sent_as_given() -> None:
    async with (
        serving(lambda _r, _n: [answer(200, b'{"ok":true}')]) as server,
        pool_for(server, headers={"Authorization": "Bearer t0k"}) as pool,
    ):
        response = await pool.request(
            "PATCH",
            "/api/v1/namespaces/a b/configmaps/x",
            params={"fieldManager": "foot", "labelSelector": "a=b,c in (d)"},
            body=b'{"k":1}',
            content_type="application/apply-patch+yaml",
        )
    assert (response.status, response.body) == (200, b'{"ok":true}')
    request = server.requests[0]
    assert request.startswith(
        b"PATCH /api/v1/namespaces/a%20b/configmaps/x?fieldManager=foot"
        b"&labelSelector=a%3Db%2Cc%20in%20%28d%29 HTTP/1.1\r\n"
    )
    assert b"\r\nAuthorization: Bearer t0k\r\n" in request
    assert b"\r\nContent-Type: application/apply-patch+yaml\r\n" in request
    assert request.endswith(b'Content-Length: 7\r\n\r\n{"k":1}')
    assert "t0k" not in repr(pool)


async def test_a_path_prefix_in_the_server_url_is_kept() -> None:
    async with serving(lambda _r, _n: [answer(200, b"")]) as server:
        pool = HttpConnectionPool(server.url + "/k8s/clusters/c1/", ssl_context=None)
        try:
            await pool.request("GET", "/version")
        finally:
            await pool.close()
    assert server.requests[0].startswith(b"GET /k8s/clusters/c1/version HTTP/1.1\r\n")


async def test_chunked_answers_split_anywhere_are_joined() -> None:
    body = b'{"items":[' + b",".join(b'"%d"' % n for n in range(2000)) + b"]}"
    chunks = [body[i : i + 777] for i in range(0, len(body), 777)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-T: 1\r\n\r\n"
    whole = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed
    pieces = [whole[i : i + 13] for i in range(0, len(whole), 13)]  # cuts mid-line everywhere
    async with serving(lambda _r, _n: pieces) as server, pool_for(server) as pool:
        first = await pool.request("GET", "/a")
        second = await pool.request("GET", "/b")
    assert first.body == body
    assert second.body == body
    assert server.connections == 1  # kept alive between them


async def test_body_until_close_is_returned_when_the_server_closes() -> None:
    async with (
        serving(lambda _r, _n: [b"HTTP/1.0 200 OK\r\n\r\nall of it", CLOSE]) as server,
        pool_for(server) as pool,
    ):
        response = await pool.request("GET", "/")
    assert response.body == b"all of it"


async def test_no_body_statuses_and_informational_answers() -> None:
    def script(request: bytes, _n: int) -> Sequence[bytes]:
        if request.startswith(b"DELETE"):
            return [b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"]
        return [b"HTTP/1.1 100 Continue\r\n\r\n", answer(201, b"made")]

    async with serving(script) as server, pool_for(server) as pool:
        deleted = await pool.request("DELETE", "/x")
        created = await pool.request("POST", "/x", body=b"{}")
    assert (deleted.status, deleted.body) == (204, b"")
    assert (created.status, created.body) == (201, b"made")
    assert server.connections == 1


async def test_connection_close_is_honoured() -> None:
    async with (
        serving(lambda _r, _n: [answer(200, b"a", "Connection: close")]) as server,
        pool_for(server) as pool,
    ):
        await pool.request("GET", "/1")
        await pool.request("GET", "/2")
    assert server.connections == 2


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced_and_sent_again() -> None:
    def script(_request: bytes, number: int) -> Sequence[bytes]:
        # Each connection answers once, then the server closes it as an idle timeout would
        # (no "Connection: close": the client believes it kept alive).
        return [answer(200, b"%d" % number), CLOSE]

    async with serving(script) as server, pool_for(server) as pool:
        assert (await pool.request("GET", "/1")).body == b"1"
        await asyncio.sleep(0.05)
        assert (await pool.request("GET", "/2")).body == b"2"
        assert (await pool.request("GET", "/3")).body == b"3"
    assert server.connections == 3
    assert [r.split(b" ")[1] for r in server.requests] == [b"/1", b"/2", b"/3"]


async def test_a_kept_alive_connection_closed_while_the_request_is_sent_is_retried_once() -> None:
    def script(request: bytes, number: int) -> Sequence[bytes] | None:
        if number == 1 and b"/first" not in request:
            return None  # the server had timed the connection out: closed without a word
        return [answer(200, b"%d" % number)]

    async with serving(script) as server, pool_for(server) as pool:
        assert (await pool.request("GET", "/first")).body == b"1"
        assert (await pool.request("GET", "/second")).body == b"2"
    assert [r.split(b" ")[1] for r in server.requests] == [b"/first", b"/second", b"/second"]


async def test_a_connection_lost_mid_answer_is_an_error_and_not_reused() -> None:
    def script(_request: bytes, number: int) -> Sequence[bytes]:
        if number == 1:  # the first connection breaks off mid-answer
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", CLOSE]
        return [answer(200, b"fine")]

    async with serving(script) as server, pool_for(server) as pool:
        with pytest.raises(HttpTransportError, match="before the whole answer"):
            await pool.request("GET", "/cut")
        assert (await pool.request("GET", "/again")).body == b"fine"
    assert server.connections == 2


async def test_malformed_answers_are_errors() -> None:
    async with (
        serving(lambda _r, _n: [b"SSH-2.0-OpenSSH\r\n\r\n"]) as server,
        pool_for(server) as pool,
    ):
        with pytest.raises(HttpTransportError, match="malformed"):
            await pool.request("GET", "/")
    async with (
        serving(
            lambda _r, _n: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"]
        ) as server,
        pool_for(server) as pool,
    ):
        with pytest.raises(HttpTransportError, match="chunk"):
            await pool.request("GET", "/")


async def test_a_cancelled_request_closes_its_connection_and_the_next_one_works() -> None:
    def script(request: bytes, _n: int) -> Sequence[bytes]:
        if request.startswith(b"GET /slow"):
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"]  # never finishes
        return [answer(200, b"quick")]

    async with serving(script) as server, pool_for(server) as pool:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await pool.request("GET", "/slow")
        assert (await pool.request("GET", "/quick")).body == b"quick"
    assert server.connections == 2  # the half-read connection was not reused


async def test_at_most_limit_connections_at_once() -> None:
    gate = asyncio.Event()
    in_flight = 0
    most = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, most
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                in_flight += 1
                most = max(most, in_flight)
                await gate.wait()
                in_flight -= 1
                writer.write(answer(200, b"ok"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = HttpConnectionPool(f"http://127.0.0.1:{port}", ssl_context=None, limit=3)
    try:
        requests = [asyncio.create_task(pool.request("GET", f"/{n}")) for n in range(10)]
        await asyncio.sleep(0.2)
        assert most == 3
        gate.set()
        answers = await asyncio.gather(*requests)
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
    assert [a.body for a in answers] == [b"ok"] * 10
    assert most == 3


async def test_a_closed_pool_refuses_requests() -> None:
    async with serving(lambda _r, _n: [answer(200, b"")]) as server:
        pool = HttpConnectionPool(server.url, ssl_context=None)
        await pool.request("GET", "/")
        await pool.close()
        with pytest.raises(HttpTransportError, match="closed"):
            await pool.request("GET", "/")


async def test_nothing_listening_is_an_os_error() -> None:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = HttpConnectionPool(f"http://127.0.0.1:{port}", ssl_context=None)
    with pytest.raises(ConnectionRefusedError):
        await pool.request("GET", "/")
    await pool.close()


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpConnectionPool("ftp://x", ssl_context=None)


async def test_a_timeout_covers_the_answer_and_the_wait_for_a_connection() -> None:
    def script(request: bytes, _n: int) -> Sequence[bytes]:
        if request.startswith(b"GET /hang"):
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"]  # never finishes
        return [answer(200, b"quick")]

    async with serving(script) as server, pool_for(server, limit=1) as pool:
        hanging = asyncio.create_task(pool.request("GET", "/hang", timeout_seconds=0.5))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):  # the only connection is taken: waits, then gives up
            await pool.request("GET", "/quick", timeout_seconds=0.1)
        assert asyncio.get_running_loop().time() - started < 0.4
        with pytest.raises(TimeoutError):
            await hanging
        assert (await pool.request("GET", "/quick", timeout_seconds=1)).body == b"quick"
    assert server.connections == 2  # the timed-out connection was closed, not reused
