"""aiohttp's own HTTP server answering what it parsed: the reference parser for the framing
differential test (`python aiohttpecho.py PORT`; `frontkit.AiohttpEcho` runs it)."""

from __future__ import annotations

import hashlib
import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "target": request.raw_path,
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
    )


if __name__ == "__main__":
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
