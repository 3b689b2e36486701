#!/usr/bin/env bash
# Stop a cluster that scripts/start-postgres.sh started and remove all its files.
#
# Usage: scripts/stop-postgres.sh [RUN_DIR]      (default: $PIER_POSTGRES_DIR)
#
# Idempotent: a cluster that is stopped already, or a directory that is gone, is not
# an error. Tries a fast shutdown (clients disconnected, no waiting for them), then an
# immediate one, then SIGKILL to the server's processes, so that no postgres process
# of this cluster outlives the script.
set -euo pipefail

run="${1:-${PIER_POSTGRES_DIR:-}}"
[[ -n "$run" ]] || { echo "stop-postgres: no cluster: pass its directory or set PIER_POSTGRES_DIR" >&2; exit 2; }
[[ -d "$run" ]] || exit 0
case "$(basename "$run")" in
run.*) ;;
*) echo "stop-postgres: $run is not a directory made by start-postgres.sh" >&2; exit 2 ;;
esac

data="$run/data"
[[ -f "$run/datadir" ]] && data="$(cat "$run/datadir")"
bin=
[[ -f "$run/bindir" ]] && bin="$(cat "$run/bindir")"
if [[ -z "$bin" && -f "$data/PG_VERSION" ]]; then
	bin="/usr/lib/postgresql/$(cat "$data/PG_VERSION")/bin"
fi

if [[ -f "$data/postmaster.pid" && -x "$bin/pg_ctl" ]]; then
	user="$(stat -c %U "$data")"
	as() { if [[ $EUID -eq 0 && "$user" != root ]]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
	as "$bin/pg_ctl" --pgdata="$data" --wait --timeout=30 stop -m fast >/dev/null 2>&1 ||
		as "$bin/pg_ctl" --pgdata="$data" --wait --timeout=30 stop -m immediate >/dev/null 2>&1 || true
fi
# Last resort: the postmaster's process group (a postmaster is its group's leader
# when pg_ctl starts it), or the postmaster itself.
if [[ -f "$data/postmaster.pid" ]]; then
	pid="$(head -n1 "$data/postmaster.pid")"
	if [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]]; then
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
fi

rm -rf "$run"
# A data directory outside the run directory (see start-postgres.sh) sits in a
# temporary directory of its own.
if [[ "$data" != "$run/data" && "$(basename "$(dirname "$data")")" == pier-postgres.* ]]; then
	rm -rf "$(dirname "$data")"
fi
echo "stop-postgres: stopped and removed ${run}" >&2
