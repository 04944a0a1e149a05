#!/usr/bin/env bash
# Installs what `make dev` and `make test` need on a fresh Debian machine.
# Running the platform (`install-deps.sh run`, for `make dev`) needs the
# PostgreSQL server binaries (pwb runs real PostgreSQL, never a stand-in)
# and the Go modules; testing it (no argument, for `make test` and the
# benchmarks) also needs Chromium for the browser tests, PgBouncer for the
# pooler tests and wrk for the HTTP benchmark. Safe to run again: it
# installs only what is missing. `install-deps.sh MODE --print` (MODE run or
# test) only prints the packages MODE needs.
set -euo pipefail

have_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "install-deps: need root to run: $*" >&2; exit 1
  fi
}

# needs are the Debian packages the mode calls for; the loop after finds the
# missing ones.
mode=${1:-test}
needs=(postgresql)
if [ "$mode" != run ]; then
  needs+=(chromium wrk pgbouncer)
fi
if [ "${2:-}" = --print ]; then
  echo "${needs[@]}"
  exit 0
fi

missing=()
for pkg in "${needs[@]}"; do
  case $pkg in
    postgresql) have_postgres || missing+=(postgresql) ;;
    pgbouncer) command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer) ;;
    *) command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]} ..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
have_postgres || { echo "install-deps: PostgreSQL server binaries are still missing" >&2; exit 1; }

go mod download
