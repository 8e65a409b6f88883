#!/usr/bin/env bash
# Make sure the servers and browser the test suite drives are installed:
# PostgreSQL (initdb/pg_ctl), redis-server, Chromium, and docker-compose (to
# validate the compose file), nginx, curl and wget (tests/deploy). As root, missing ones are installed with apt-get;
# otherwise we stop with the list of Debian packages to install.
set -euo pipefail

missing=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# tests/deploy runs the compose file's TLS proxy and healthchecks with these.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v wget >/dev/null 2>&1 || missing+=(wget)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "make test needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null
# The Debian postgresql package starts a cluster as a service; the tests start
# their own throwaway server, so stop the packaged one if it came up.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for c in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster "$c" main stop >/dev/null 2>&1 || true; done
fi
# Debian's nginx package may start a server on port 80; tests/deploy runs its own.
if command -v nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then nginx -s stop >/dev/null 2>&1 || true; fi
