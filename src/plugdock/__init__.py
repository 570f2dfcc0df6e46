"""plugdock: a Python implementation of the Dify plugin system (SDK, CLI and daemon)."""

__version__ = "0.1.0"
