"""Publishing: the Marketplace's automated checks run locally, GitHub releases, and the Marketplace pull request.

It sits above the daemon (a throwaway daemon proves the package installs) and below the CLI."""
