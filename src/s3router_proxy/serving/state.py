"""What the proxy serves from: one config and the backends built from it, swapped whole on
reload (the handler holds one at a time; every request keeps the one it started with)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backends.backend import Backend
from ..config.model import ClientConfig, Config


@dataclass
class ProxyState:
    """What the handler serves from: one config and the backends built from it."""

    config: Config
    backends: dict[str, Backend]
    clients: dict[str, ClientConfig] = field(default_factory=dict)
    in_flight: int = 0

    @classmethod
    def build(cls, config: Config, previous: ProxyState | None = None) -> ProxyState:
        """A state for `config`; backends whose settings did not change are taken over."""
        backends = {}
        for name, backend_config in config.backends.items():
            old = previous.backends.get(name) if previous else None
            backends[name] = (
                old if old and old.config == backend_config else Backend(backend_config)
            )
        return cls(
            config=config,
            backends=backends,
            clients={c.access_key_id: c for c in config.clients},
        )
