"""The config loaded the same way at start and at every reload (SIGHUP, or a changed file with
`router.watch_config`): a bad file is logged and the config already serving keeps serving, and
the listeners and TLS stay as they were (they change only on restart)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .config.load import load_config
from .config.model import EMBEDDED, Config
from .config.reader import ConfigError

if TYPE_CHECKING:
    from .serving.handler import ProxyServer

log = logging.getLogger("s3router_proxy")
WATCH_INTERVAL = 1.0


@dataclasses.dataclass(frozen=True)
class Loader:
    """Loads the config file the same way at start and at every reload."""

    path: str
    environment: str | None
    overrides: Mapping[str, object]  # Config fields set on the command line
    embedded: Mapping[str, str]  # backend name -> endpoint of its running demo store

    def load(self) -> Config:
        config = dataclasses.replace(
            load_config(self.path, environment=self.environment), **self.overrides
        )
        backends = dict(config.backends)
        for name, backend in backends.items():
            if backend.endpoint == EMBEDDED:
                if name not in self.embedded:
                    raise ConfigError(
                        f"{self.path}: backend {name!r}: an embedded store cannot be added by a "
                        "reload; restart the proxy"
                    )
                backends[name] = backend.running_at(self.embedded[name])
        return dataclasses.replace(config, backends=backends)


def keep_listeners(new: Config, old: Config) -> Config:
    """`new`, but with the listeners and TLS of `old`: those change only on restart."""
    fixed = ("listen_host", "listen_port", "admin_host", "admin_port")
    fixed += ("tls_cert_file", "tls_key_file")
    if any(getattr(new, name) != getattr(old, name) for name in fixed):
        log.warning("listen addresses and TLS settings change only on restart; kept as they were")
        new = dataclasses.replace(new, **{name: getattr(old, name) for name in fixed})
    return new


def reload(server: ProxyServer, loader: Loader) -> None:
    """Serve the file as it is now; a config that does not load leaves the old one serving."""
    # Imported here, not above: with --workers the metrics module must first see the
    # multiprocess directory, which is set after the command line is read.
    from .telemetry import metrics

    old = server.state.config
    try:
        new = loader.load()
    except ConfigError as exc:
        metrics.CONFIG_RELOADS.labels("rejected").inc()
        log.error("config reload rejected, still serving the previous config: %s", exc)
        return
    new = keep_listeners(new, old)
    server.reload(new)
    metrics.CONFIG_RELOADS.labels("success").inc()
    log.info("config reloaded: %d backend(s), %d rule(s)", len(new.backends), len(new.rules))


async def watch(path: str, reload: Callable[[], None]) -> None:
    """Reload when the file's modification time or size changes (polling: works on any FS)."""

    def stamp() -> tuple[float, int] | None:
        try:
            info = Path(path).stat()
        except OSError:
            return None
        return info.st_mtime, info.st_size

    last = stamp()
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        current = stamp()
        if current is not None and current != last:
            last = current
            reload()
