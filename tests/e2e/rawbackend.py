"""A logging fake backend for framing tests: it records exactly what reached it and answers
whatever bytes a test scripts, including answers no real S3 server would send.

Run as its own process (`python rawbackend.py PORT LOGDIR`; `harness.RawBackend` does it):

- every byte received on connection N is appended to `LOGDIR/conn-N.bin`;
- every request llhttp completes is a JSON line in `LOGDIR/requests.jsonl` (`conn`, `method`,
  `target`, `headers` as received, `body_len`, `body_sha256`, `body_b64` up to 64 KiB); a
  request llhttp refuses is a line with `error` and closes the connection;
- the answer to each request is read from `LOGDIR/script.json` when it exists, a JSON object
  mapping `"METHOD target"`, then `target`, then `"*"` to a list of steps: `{"send": base64}`,
  `{"sleep": seconds}`, `{"close": true}` (steps after the answer, such as a late unsolicited
  write, run while the connection keeps reading); otherwise a `200` with an empty body.
  `Expect: 100-continue` gets `100 Continue` unless the script has `"no_continue": true`.
  With `"early": true` the answer starts as soon as the request's head is in, before its body
  (the request is then logged with `"early": true` at that moment, and again when complete).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from pathlib import Path

import httptools

DEFAULT_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "d41d8cd98f00b204e9800998ecf8427e"\r\n\r\n'
)
_KEEP_BODY = 64 * 1024


class _Connection(asyncio.Protocol):
    counter = 0

    def __init__(self, logdir: Path) -> None:
        _Connection.counter += 1
        self.id = _Connection.counter
        self.logdir = logdir
        self.raw = (logdir / f"conn-{self.id}.bin").open("ab", buffering=0)
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.answers: asyncio.Queue[list[dict[str, object]] | None] = asyncio.Queue()
        self._reset()

    def _reset(self) -> None:
        self.target = b""
        self.headers: list[tuple[str, str]] = []
        self.body = hashlib.sha256()
        self.kept = bytearray()
        self.body_len = 0
        self.early = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        asyncio.get_running_loop().create_task(self._answer_loop())

    def data_received(self, data: bytes) -> None:
        self.raw.write(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._log({"conn": self.id, "error": "upgrade"})
            self._close()
        except httptools.HttpParserError as exc:
            self._log({"conn": self.id, "error": str(exc)})
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.raw.close()
        self.answers.put_nowait(None)

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        expect = any(k.lower() == "expect" and v.lower() == "100-continue" for k, v in self.headers)
        if expect and not self._steps().get("no_continue"):
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        method = self.parser.get_method().decode("latin-1")
        target = self.target.decode("latin-1")
        script = self._steps(method, target)
        if script.get("early"):
            self.early = True
            record = {"conn": self.id, "method": method, "target": target, "early": True}
            self._log({**record, "headers": self.headers})
            self.answers.put_nowait(list(script.get("steps", [])))  # type: ignore[call-overload]

    def on_body(self, body: bytes) -> None:
        self.body.update(body)
        self.body_len += len(body)
        if len(self.kept) < _KEEP_BODY:
            self.kept += body[: _KEEP_BODY - len(self.kept)]

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        target = self.target.decode("latin-1")
        self._log(
            {
                "conn": self.id,
                "method": method,
                "target": target,
                "headers": self.headers,
                "body_len": self.body_len,
                "body_sha256": self.body.hexdigest(),
                "body_b64": base64.b64encode(bytes(self.kept)).decode(),
            }
        )
        if not self.early:
            script = self._steps(method, target)
            self.answers.put_nowait(list(script.get("steps", [])))  # type: ignore[call-overload]
        self._reset()

    def _steps(self, method: str = "", target: str = "") -> dict[str, object]:
        path = self.logdir / "script.json"
        if not path.exists():
            return {}
        script = json.loads(path.read_text())
        for name in (f"{method} {target}", target, "*"):
            if name in script:
                entry = script[name]
                return entry if isinstance(entry, dict) else {"steps": entry}
        return {}

    async def _answer_loop(self) -> None:
        while True:
            steps = await self.answers.get()
            if steps is None or self.transport is None or self.transport.is_closing():
                return
            if not steps:
                self.transport.write(DEFAULT_ANSWER)
                continue
            for step in steps:
                if "send" in step:
                    self.transport.write(base64.b64decode(str(step["send"])))
                elif "sleep" in step:
                    await asyncio.sleep(float(step["sleep"]))  # type: ignore[arg-type]
                elif step.get("close"):
                    self._close()
                    return
                if self.transport.is_closing():
                    return

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _log(self, record: dict[str, object]) -> None:
        with (self.logdir / "requests.jsonl").open("a") as log:
            log.write(json.dumps(record) + "\n")


async def main(port: int, logdir: Path) -> None:
    logdir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(logdir), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
