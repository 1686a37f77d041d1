#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are installed (Debian package `postgresql`). The test suite starts its
# own throw-away server on a private port (src/abscopal/store/pgserver.py); nothing here starts a service.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
echo "Installing PostgreSQL server binaries (apt-get install postgresql)…"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "PostgreSQL is not installed and this user cannot install it; run as root: apt-get install postgresql" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The Debian package starts a cluster of its own on port 5432; the tests do not use it.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
