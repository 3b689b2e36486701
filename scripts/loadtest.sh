#!/usr/bin/env bash
# Measures requests per second of benchserver's modes under wrk, the way
# docs/benchmarks.md reports them: the server pinned to CPU 0, wrk with 64
# connections on CPU 1, GET /users/42, rounds interleaved so that drift in the
# machine hits every mode alike, medians reported with each mode's ratio to the
# first. Beside requests per second it reports the server's CPU time per
# request (user and system, from /proc): on a machine whose other tenants
# take CPU time from the server in some rounds, throughput swings with them,
# while the work a request costs moves less; the least CPU time per request
# of any round is what a mode costs when nothing else interfered.
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
command -v bc >/dev/null || { echo "loadtest: bc is missing (apt-get install bc)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "loadtest: needs 2 CPUs" >&2; exit 1; }

mkdir -p .cache/bin
go build -o .cache/bin/benchserver ./internal/cmd/benchserver

port=$((20000 + RANDOM % 20000))
hz=$(getconf CLK_TCK)
# cputicks prints the CPU time, user and system, pid has used, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A results cpu
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
		cpu0=$(cputicks "$pid")
		out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "${auth[@]}" "http://127.0.0.1:$port/users/42")
		cpu1=$(cputicks "$pid")
		if grep -q 'Non-2xx' <<<"$out"; then # a refused request is cheap: it must not count
			kill "$pid"
			echo "loadtest: $m answered errors:" >&2
			echo "$out" >&2
			exit 1
		fi
		rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
		n=$(awk '/requests in/ {print $1}' <<<"$out")
		us=$(echo "($cpu1 - $cpu0) * 1000000 / $hz / $n" | bc -l)
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		results[$m]+="$rps "
		cpu[$m]+="$us "
		printf 'round %d %-14s %10.0f req/s %8.1f us CPU/request\n' "$r" "$m" "$rps" "$us"
	done
done

least() { tr ' ' '\n' | grep -v '^$' | sort -n | head -1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${results[${modes[0]}]}" | median)
cbase=$(echo "${cpu[${modes[0]}]}" | median)
echo
cmin0=$(echo "${cpu[${modes[0]}]}" | least)
printf '%-14s %12s %6s %14s %6s %13s %6s\n' mode "median req/s" ratio "median us CPU" ratio "least us CPU" ratio
for m in "${modes[@]}"; do
	med=$(echo "${results[$m]}" | median)
	cmed=$(echo "${cpu[$m]}" | median)
	cmin=$(echo "${cpu[$m]}" | least)
	# The CPU ratios are inverted, the first mode's cost over this one's, so
	# that every ratio reads the same way: above 1 is faster than the first.
	printf '%-14s %12.0f %6.2f %14.1f %6.2f %13.1f %6.2f\n' "$m" "$med" "$(echo "$med / $base" | bc -l)" \
		"$cmed" "$(echo "$cbase / $cmed" | bc -l)" "$cmin" "$(echo "$cmin0 / $cmin" | bc -l)"
done
