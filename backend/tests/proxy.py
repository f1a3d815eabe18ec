"""A TCP proxy in front of a real database server, to take it away and bring it back."""

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; `stop()` is an outage, `start()` the recovery."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.StreamWriter] = set()
        self._doomed: set[asyncio.StreamWriter] = set()
        self.bytes_to_server = 0  # what clients have sent, for counting round trips

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a crashed server would."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    def freeze(self) -> None:
        """Let the open connections carry nothing more, without closing them: a connection
        dropped silently (a firewall's idle timeout, a host gone). New ones still work."""
        self._frozen.update(self._writers)

    def break_on_next_use(self) -> None:
        """Cut each open connection as soon as its client sends something: a connection
        that dies after the client took it from its pool, before the close could show."""
        self._doomed.update(self._writers)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(
            self._pipe(client_reader, server_writer, to_server=True),
            self._pipe(server_reader, client_writer, to_server=False),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_server: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if writer in self._frozen:
                    continue
                if writer in self._doomed:
                    writer.transport.abort()
                    break
                if to_server:
                    self.bytes_to_server += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
