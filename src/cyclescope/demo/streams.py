"""A standard-library reproduction of the aiohttp #10535 leak pattern.

A tiny HTTP-like client on asyncio protocols talks to an asyncio server on
127.0.0.1 that drops every connection before answering. The client's protocol
stores the disconnect exception, as aiohttp's ``ResponseHandler`` did; the
exception's traceback holds the frame of ``ClientResponse.start()`` whose ``self`` is
the response, and the response holds the protocol:

    ClientResponse ._protocol -> ResponseHandler ._exception -> ServerDisconnected
    .__traceback__ -> traceback .tb_frame -> frame of ClientResponse.start() local 'self'

Dropping the response does not free it; only the cyclic collector can. The fixed
variant clears the stored exception when the protocol closes (aiohttp's own fix,
PR #10556), so nothing is left for the collector.
"""

from __future__ import annotations

import asyncio
import socket

__all__ = ["ServerDisconnected", "ResponseHandler", "ClientResponse", "scenario"]


class ServerDisconnected(ConnectionError):
    """The server closed the connection before sending a status line."""


class ResponseHandler(asyncio.Protocol):
    """Reads one status line; remembers why the connection was lost."""

    def __init__(self, *, clear_on_close: bool) -> None:
        self._clear_on_close = clear_on_close
        self._transport: asyncio.BaseTransport | None = None
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[bytes] | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n" in self._buffer and self._waiter is not None and not self._waiter.done():
            line, _, self._buffer = self._buffer.partition(b"\r\n")
            self._waiter.set_result(line)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._exception = ServerDisconnected("server disconnected")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._exception)

    async def read_status(self) -> bytes:
        """Wait for the status line; raise the stored error if the connection is gone."""
        if self._exception is not None:
            raise self._exception
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        """Close the connection; the fixed variant also forgets the stored exception."""
        if self._clear_on_close:
            self._exception = None
        if self._transport is not None:
            self._transport.close()


class ClientResponse:
    """The client side of one request, holding its protocol like aiohttp's."""

    def __init__(self, protocol: ResponseHandler) -> None:
        self._protocol = protocol
        self.status: bytes | None = None

    async def start(self) -> "ClientResponse":
        """Read the status line."""
        self.status = await self._protocol.read_status()
        return self

    def close(self) -> None:
        """Release the connection."""
        self._protocol.close()


async def _drop_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()  # drop the connection before any response byte


async def request(host: str, port: int, *, fixed: bool) -> ClientResponse:
    """Connect and send a request; the returned response is not started yet."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: ResponseHandler(clear_on_close=fixed), host, port)
    return ClientResponse(protocol)


async def scenario(*, fixed: bool = False) -> None:
    """One request against a server that drops the connection; the response is discarded."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(_drop_connection, sock=sock)
    host, port = sock.getsockname()[:2]
    try:
        response: ClientResponse | None = await request(host, port, fixed=fixed)
        try:
            await response.start()  # type: ignore[union-attr]
        except ServerDisconnected:
            response.close()  # type: ignore[union-attr]
        response = None
    finally:
        server.close()
        await server.wait_closed()
