#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for pier's tests and print how to reach it.
#
# Usage: eval "$(scripts/start-postgres.sh)"      ... tests ...      scripts/stop-postgres.sh
#
# Prints two shell lines on stdout (everything else goes to stderr):
#   export PIER_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   export PIER_POSTGRES_DIR=.../.cache/postgres/run.XXXXXX
# and writes the URL to $PIER_POSTGRES_DIR/url. scripts/stop-postgres.sh stops the
# cluster named by PIER_POSTGRES_DIR (or its argument) and removes every file of it.
#
# The cluster:
# - runs Debian's server binaries (/usr/lib/postgresql/15/bin, or PG_BINDIR); when no
#   server is installed and we are root, `apt-get install postgresql` installs it,
#   without letting the package create and start a system-wide cluster of its own;
# - runs as an unprivileged user, as PostgreSQL refuses root: as root, the system
#   user pier-pg (created when missing, no login shell, no home); otherwise as the
#   caller;
# - lives in a fresh directory under .cache/postgres/ (git-ignored), or under
#   $TMPDIR when pier-pg cannot reach .cache (a checkout in a private home);
# - listens on 127.0.0.1 only, on a free port (tried at random in 20000-32767, below
#   Linux's ephemeral range, retried when another process took it first), with no
#   Unix socket; trusts every loopback connection (a throwaway cluster: anyone on this
#   machine may use it while it runs); fsync, synchronous_commit and full-page writes
#   are off, as its data is thrown away.
#
# Leftovers: every cluster records its owner (PIER_POSTGRES_OWNER, a process id;
# default the caller, $PPID). A start first stops and removes the clusters whose owner
# has died, so a run killed with SIGKILL leaves no server behind past the next start.
# Several clusters may run at once (several checkouts sharing .cache).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="$root/.cache/postgres"
owner="${PIER_POSTGRES_OWNER:-$PPID}"
pg_user=pier-pg

log() { echo "start-postgres: $*" >&2; }
die() { log "$*"; exit 1; }

# bindir finds the server: PG_BINDIR, else version 15, else the newest installed.
bindir() {
	if [[ -n "${PG_BINDIR:-}" ]]; then
		[[ -x "$PG_BINDIR/postgres" && -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]] ||
			die "PG_BINDIR=$PG_BINDIR holds no postgres, initdb and pg_ctl"
		echo "$PG_BINDIR"
		return
	fi
	local d
	for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn); do
		if [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return
		fi
	done
}

install_server() {
	[[ $EUID -eq 0 ]] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin and not root: install Debian's postgresql package (apt-get install postgresql) or set PG_BINDIR"
	command -v apt-get >/dev/null || die "no PostgreSQL server and no apt-get: install PostgreSQL 15 and set PG_BINDIR"
	log "installing Debian's postgresql package (apt-get)"
	# The package would create and start a cluster "main" on port 5432; tests need
	# none of it. A createcluster.conf that exists before the install is kept.
	if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
		mkdir -p /etc/postgresql-common
		echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
	fi
	export DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
	apt-get update >&2
	apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >&2
}

# alive tells whether the process identity "pid starttime" (see identity) still runs.
alive() {
	local pid="${1%% *}"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	{ [[ -d /proc/$pid ]] || kill -0 "$pid" 2>/dev/null; } || return 1
	# A zombie (killed, not yet reaped by its parent) has gone too.
	local stat
	if stat="$(cat "/proc/$pid/stat" 2>/dev/null)"; then
		stat="${stat##*) }"
		[[ "${stat:0:1}" != Z ]] || return 1
	fi
	[[ "$(identity "$pid")" == "$1" ]]
}

# identity prints "pid starttime": a pid alone may be reused by a later process.
identity() {
	local stat
	if stat="$(cat "/proc/$1/stat" 2>/dev/null)"; then
		stat="${stat##*) }" # fields after the command name, which may hold spaces
		# shellcheck disable=SC2086
		set -- "$1" $stat
		echo "$1 ${21}" # field 22 (starttime) is the 20th after the name, +1 for $1
	else
		echo "$1 $1"
	fi
}

reap_stale() {
	local run
	for run in "$base"/run.*; do
		[[ -d "$run" ]] || continue
		if [[ -f "$run/owner" ]] && alive "$(cat "$run/owner")"; then
			continue
		fi
		# A run still being set up has no owner file for a moment; leave runs younger
		# than a minute alone.
		if [[ ! -f "$run/owner" ]] && [[ -n "$(find "$run" -maxdepth 0 -mmin -1)" ]]; then
			continue
		fi
		log "stopping a cluster whose owner has gone: ${run#"$root"/}"
		"$root/scripts/stop-postgres.sh" "$run" >&2 || true
	done
}

bin="$(bindir)"
if [[ -z "$bin" ]]; then
	install_server
	bin="$(bindir)"
	[[ -n "$bin" ]] || die "apt-get installed postgresql, but no server binaries in /usr/lib/postgresql/*/bin"
fi

# as runs a command as the cluster's user.
if [[ $EUID -eq 0 ]]; then
	if ! id -u "$pg_user" >/dev/null 2>&1; then
		log "creating the system user $pg_user"
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			--user-group "$pg_user" ||
			id -u "$pg_user" >/dev/null 2>&1 || die "cannot create the user $pg_user"
	fi
	as() { runuser -u "$pg_user" -- "$@"; }
else
	pg_user="$(id -un)"
	as() { "$@"; }
fi

mkdir -p "$base"
exec 9>"$base/.lock"
flock 9
reap_stale
run="$(mktemp -d "$base/run.XXXXXX")"
identity "$owner" >"$run/owner"
flock -u 9
exec 9>&-

# On failure, take down whatever was made.
ok=
cleanup() {
	[[ -z "$ok" ]] || return 0
	log "interrupted or failed: removing ${run#"$root"/}"
	"$root/scripts/stop-postgres.sh" "$run" >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

data="$run/data"
if [[ $EUID -eq 0 ]]; then
	chown "$pg_user:" "$run"
	if ! as test -w "$run" -a -x "$run"; then
		# .cache is not reachable for pier-pg (a checkout under /root, say).
		data="$(mktemp -d "${TMPDIR:-/tmp}/pier-postgres.XXXXXX")"
		chown "$pg_user:" "$data"
		chmod 0700 "$data"
		data="$data/data"
	fi
fi
echo "$data" >"$run/datadir"

log "initdb ($bin) into $data as $pg_user"
as "$bin/initdb" --pgdata="$data" --username=postgres --auth=trust --encoding=UTF8 \
	--locale=C --no-sync >"$run/initdb.log" 2>&1 || { cat "$run/initdb.log" >&2; die "initdb failed"; }
cat >>"$data/postgresql.conf" <<'EOF'

# pier's throwaway test cluster (scripts/start-postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_min_error_statement = panic
EOF

port=
for attempt in 1 2 3 4 5 6 7 8; do
	try=$((20000 + RANDOM % 12768))
	# Someone answers there already: pick another.
	if (exec 3<>"/dev/tcp/127.0.0.1/$try") 2>/dev/null; then
		continue
	fi
	if as "$bin/pg_ctl" --pgdata="$data" --log="$data/server.log" --wait --timeout=60 \
		--options="-p $try" start >"$run/pg_ctl.log" 2>&1; then
		port=$try
		break
	fi
	# Lost the port to another process between the check and the bind: try another.
	if grep -q 'could not bind\|Address already in use\|could not create any TCP/IP sockets' "$data/server.log" 2>/dev/null; then
		log "port $try taken (attempt $attempt), trying another"
		as "$bin/pg_ctl" --pgdata="$data" stop -m immediate >/dev/null 2>&1 || true
		continue
	fi
	cat "$run/pg_ctl.log" "$data/server.log" >&2 2>/dev/null || true
	die "postgres did not start"
done
[[ -n "$port" ]] || die "no free port found for postgres"

url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "$url" >"$run/url"
echo "$bin" >"$run/bindir"
ok=1
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port in ${run#"$root"/}"
printf 'export PIER_POSTGRES_URL=%q\nexport PIER_POSTGRES_DIR=%q\n' "$url" "$run"
