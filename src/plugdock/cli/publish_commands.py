"""``plugdock publish``: check a plugin as the Marketplace does, release it on GitHub, open the Marketplace PR."""

from __future__ import annotations

import click


@click.group()
def publish() -> None:
    """Get a plugin from a folder to where Dify users install it."""


COMMANDS = [publish]
