#!/bin/sh
# System packages the test suite needs beyond Python: nftables, for the plugin network rules
# (plugdock.daemon.network). Idempotent: does nothing when `nft` is already there.
set -eu
if command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nftables >/dev/null
