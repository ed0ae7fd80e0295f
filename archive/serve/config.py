"""What `archive serve` is started with, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServeConfig:
    store: str | None = None                    # folder or s3:// address (None: the default store)
    catalog: str | None = None                  # --catalog (None: the store's default)
    endpoint_url: str | None = None
    trusted: dict[str, str] = field(default_factory=dict)   # key fingerprint -> name
    tsa_paths: list[str] = field(default_factory=list)
    bind: str = "127.0.0.1"
    port: int = 8080
    replay_port: int | None = None              # None: the port after --port
    token: str | None = None
    operator: str = ""                          # who the 'verified' custody entries name
    record: bool = True                         # Verify now adds a 'verified' custody entry
    allow_unsigned: bool = False                # as `archive verify --allow-unsigned`

    @property
    def replay_port_number(self) -> int:
        return self.replay_port if self.replay_port is not None else (self.port + 1 if self.port else 0)
