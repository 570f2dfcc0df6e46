"""A self-hosted marketplace: the Marketplace API Dify calls (``MARKETPLACE_API_URL``) over packages plugdock keeps.

Separate from the daemon (it runs where packages are published, not where plugins run) and sharing only what sits
below both: the package reader, the signature scheme and the declaration loader.
"""
