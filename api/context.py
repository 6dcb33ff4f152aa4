"""What the HTTP and WebSocket handlers work with: the engine and the API process's own
pieces (the shared stream reader, the WebSocket connection counts).

Built once in `create_app` (api/app.py) and injected into each handler as `api` by
Litestar's dependency injection: handlers never look services up on `app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.di import NamedDependency

from adapters.bootstrap import Engine
from adapters.settings import Settings
from api.connection_limits import ConnectionLimits
from api.fanout import StreamHub


@dataclass(frozen=True, kw_only=True)
class Api:
    engine: Engine
    hub: StreamHub
    ws_limits: ConnectionLimits

    @property
    def settings(self) -> Settings:
        return self.engine.settings


# How a handler asks for it: a parameter `api: ApiDependency`.
ApiDependency = NamedDependency[Api]
