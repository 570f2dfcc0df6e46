"""Plugin packages on this host: install, environments, processes and their containment."""
