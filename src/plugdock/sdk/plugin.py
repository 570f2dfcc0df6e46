"""``Plugin``: what ``main.py`` builds; ``run()`` serves the plugin on the transport the environment picks."""

from __future__ import annotations

from plugdock.sdk.config import DifyPluginEnv


class Plugin:
    """Serves the plugin in the current directory: stdio (local), TCP (remote debugging) or HTTP (serverless)."""

    def __init__(self, config: DifyPluginEnv | None = None) -> None:
        self.config = config or DifyPluginEnv()

    def run(self) -> None:
        from plugdock.runtime.entry import run_plugin

        run_plugin(self.config)
