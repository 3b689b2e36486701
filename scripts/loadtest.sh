#!/usr/bin/env bash
# Measures requests per second of benchserver's modes under wrk, the way
# docs/benchmarks.md reports them: the server pinned to CPU 0, wrk with 64
# connections on CPU 1, GET /users/42, rounds interleaved so that drift in the
# machine hits every mode alike, medians reported with each mode's ratio to the
# first.
#
#   scripts/loadtest.sh [rounds] [seconds] [modes...]
#   scripts/loadtest.sh 5 5 bare service service-nolog service-min
#   scripts/loadtest.sh 5 5 proxy proxy-pool gateway   # the gateway against bare reverse proxies
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-5}
secs=${2:-5}
shift 2 2>/dev/null || shift $#
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(bare service service-nolog service-min)

command -v wrk >/dev/null || { echo "loadtest: wrk is missing (apt-get install wrk)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "loadtest: taskset is missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "loadtest: needs 2 CPUs" >&2; exit 1; }

mkdir -p .cache/bin
go build -o .cache/bin/benchserver ./internal/cmd/benchserver

port=$((20000 + RANDOM % 20000))
declare -A results
for ((r = 1; r <= rounds; r++)); do
	for m in "${modes[@]}"; do
		token=.cache/bench-token
		rm -f "$token"
		taskset -c 0 .cache/bin/benchserver -mode "$m" -addr "127.0.0.1:$port" -token-file "$token" &
		pid=$!
		auth=()
		for _ in $(seq 100); do # wait until it answers, at most 10 s
			[ -s "$token" ] && auth=(-H "Authorization: Bearer $(cat "$token")")
			curl -fs "${auth[@]}" "http://127.0.0.1:$port/users/42" >/dev/null 2>&1 && break
			sleep 0.1
		done
		out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "${auth[@]}" "http://127.0.0.1:$port/users/42")
		if grep -q 'Non-2xx' <<<"$out"; then # a refused request is cheap: it must not count
			kill "$pid"
			echo "loadtest: $m answered errors:" >&2
			echo "$out" >&2
			exit 1
		fi
		rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		results[$m]+="$rps "
		printf 'round %d %-14s %10.0f req/s\n' "$r" "$m" "$rps"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${results[${modes[0]}]}" | median)
echo
printf '%-14s %12s %8s\n' mode "median req/s" ratio
for m in "${modes[@]}"; do
	med=$(echo "${results[$m]}" | median)
	printf '%-14s %12.0f %8.2f\n' "$m" "$med" "$(echo "$med / $base" | bc -l)"
done
