"""Importing an official dify-plugin-daemon's state into a plugdock home (``plugdock migrate-from-official``).

:mod:`.official` reads the official database and storage folder (read-only), :mod:`.report` says what
happened to every item, and :mod:`.importer` plans the import against the plugdock home and applies it
through the :class:`~plugdock.daemon.core.Daemon`'s installer.
"""
