"""``plugdock serve``: installs, isolates, supervises and dispatches plugins behind the official daemon's HTTP API."""
