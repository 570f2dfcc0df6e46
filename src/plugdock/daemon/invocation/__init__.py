"""Calls that cross the daemon: reverse invocation from plugins, and the remote-debugging server."""
