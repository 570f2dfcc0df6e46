"""The plugin-side runtime: loads a plugin's declarations and classes and serves them over stdio, TCP or HTTP.

A plugin process imports this, the SDK, the protocol and (lazily) the schema; never the daemon, the
CLI, a web framework or a database layer.
"""
