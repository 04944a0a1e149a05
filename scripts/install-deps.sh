#!/usr/bin/env bash
# Installs what `make dev` and `make test` need on a fresh Debian machine.
# Running the platform (`install-deps.sh run`, for `make dev`) needs the
# PostgreSQL server binaries (pwb runs real PostgreSQL, never a stand-in)
# and the Go modules; testing it (no argument, for `make test` and the
# benchmarks) also needs Chromium for the browser tests, PgBouncer for the
# pooler tests and wrk for the HTTP benchmark. Safe to run again: it
# installs only what is missing.
set -euo pipefail

have_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "install-deps: need root to run: $*" >&2; exit 1
  fi
}

missing=()
have_postgres || missing+=(postgresql)
if [ "${1:-}" != run ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]} ..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
have_postgres || { echo "install-deps: PostgreSQL server binaries are still missing" >&2; exit 1; }

go mod download
