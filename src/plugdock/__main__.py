"""``python -m plugdock`` runs the command line."""

from plugdock.cli.main import main

main()
