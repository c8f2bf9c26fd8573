"""A TCP relay that passes bytes on at a set rate, each way, per connection.

Run as its own process: `python slowlink.py PORT TARGET_PORT BYTES_PER_SECOND`. For tests that
watch a transfer while it runs: on loopback a copy of a few MiB is over before anyone looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

LOOPBACK = "127.0.0.1"
PIECE = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float) -> None:
    try:
        while data := await reader.read(PIECE):
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(len(data) / rate)
    except OSError:
        pass
    finally:
        writer.close()


async def main(port: int, target: int, rate: float) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            pipe(reader, upstream_writer, rate),
            pipe(upstream_reader, writer, rate),
            return_exceptions=True,
        )

    server = await asyncio.start_server(relay, LOOPBACK, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
