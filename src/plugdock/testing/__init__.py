"""Test a plugin in-process, with no daemon and no packaging: ``PluginTestClient`` and ``FakeHost``."""

from plugdock.testing.client import InvocationResult, PluginTestClient
from plugdock.testing.host import FakeHost

__all__ = ["FakeHost", "InvocationResult", "PluginTestClient"]
