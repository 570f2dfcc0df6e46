"""The ``plugdock`` command line: thin commands that call the other parts."""
