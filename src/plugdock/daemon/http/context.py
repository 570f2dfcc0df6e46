"""How a route reaches the daemon: the one :class:`~plugdock.daemon.core.Daemon` the app's lifespan created."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from plugdock.daemon.core import Daemon

PREFIX = "/plugin/{tenant_id}/management"


def current_daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


DaemonDep = Annotated[Daemon, Depends(current_daemon)]
