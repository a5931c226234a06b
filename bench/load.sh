#!/usr/bin/env bash
# Load benchmark: azad's protected route against the same server's public route, and the same
# routes behind jwt-authorizer and aliri, in one interleaved run. Needs Debian's `wrk` and
# `taskset` (util-linux).
#
#   bash bench/load.sh                 # ROUNDS=3 DURATION=5s CONNECTIONS=32 POOL=1000 NEVER=20000
#   BASELINE=/path/to/peer-server bash bench/load.sh   # also azad built from another commit
#   PEERS=0 BASELINE=... ROUNDS=8 bash bench/load.sh     # azad before/after only
#   PEERS=0 PAIRS=30 DURATION=2s bash bench/load.sh       # the repeated token against /health
#                                      # with the header only, in 30 alternating pairs
#
# - Every server is the same binary (bench/peers, a workspace of its own: the main build never
#   depends on the peers) serving `GET /health` (public) and `GET /api/me` (a token with scope
#   `access_as_user`; answers the `name` claim), on a multi-threaded tokio runtime.
# - Servers are pinned to CPU 0, wrk (one thread, CONNECTIONS connections) and the dev tenant
#   to CPU 1.
# - Variants per server: `/health` without and with the same `Authorization` header, the
#   protected route with one repeated token, with POOL distinct tokens in turn, and with
#   "never-seen" tokens: NEVER distinct tokens in turn against an azad whose validated-token
#   cache holds 1 000 (a token comes back only after NEVER-1 others: every request is a miss,
#   a full validation and a cache insert). The peers verify every request anyway.
# - Reported per variant: requests/s, p50 and p99 latency (wrk), and the server's CPU time per
#   request from its own accounting (the scheduler's nanoseconds summed over the server's
#   threads, /proc/PID/task/*/schedstat, before and after the run, divided by the requests
#   wrk completed); medians over the rounds with their spread (min–max; the 10th–90th
#   percentiles over ten runs or more). Ratios and added CPU are taken against `/health` with the header in the same
#   round (paired, seconds apart), then their median over the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
POOL=${POOL:-1000}
NEVER=${NEVER:-20000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet --example dev_tenant
main_target=${CARGO_TARGET_DIR:-target}
peers_target=${PEERS_TARGET_DIR:-bench/peers/target}
CARGO_TARGET_DIR=$peers_target cargo build --release --quiet --manifest-path bench/peers/Cargo.toml --bin peer-server
peer_server=$peers_target/release/peer-server

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DEV_PORT=$(free_port)
PORT=$DEV_PORT RUST_LOG=warn taskset -c "$CLIENT_CPU" "$main_target/release/examples/dev_tenant" \
    --tokens $((POOL + NEVER)) --out "$work/all" > "$work/dev.log" &
echo "minting $((POOL + NEVER)) tokens..." >&2
for _ in $(seq 3000); do [ -s "$work/all" ] && break; sleep 0.1; done
[ -s "$work/all" ] || { echo "the dev tenant wrote no tokens" >&2; exit 1; }
# `  NAME=value` and `  label: value` lines of the dev tenant's output.
setting() { awk -v k="$1" 'index($0, k) { sub(/^[^=]*=/, ""); print $1; exit }' "$work/dev.log"; }
labelled() { awk -v k="$1" 'index($0, k) { sub(/^[^:]*:[ ]+/, ""); print $1; exit }' "$work/dev.log"; }
export AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_AUTHORITY_HOST JWKS_URL ISSUER
AZURE_TENANT_ID=$(setting "AZURE_TENANT_ID=")
AZURE_CLIENT_ID=$(setting "AZURE_CLIENT_ID=")
AZURE_AUTHORITY_HOST=$(setting "AZURE_AUTHORITY_HOST=")
JWKS_URL=$(labelled "JWKS:")
ISSUER=$(labelled "issuer (v2.0):")
head -n 1 "$work/all" > "$work/one"
head -n "$POOL" "$work/all" > "$work/pool"
tail -n "$NEVER" "$work/all" > "$work/never"

declare -A PID URL
start() { # name, middleware, [cache capacity], [server binary]
    local port; port=$(free_port)
    PORT=$port CACHE_CAPACITY=${3:-10000} RUST_LOG=warn taskset -c "$SERVER_CPU" "${4:-$peer_server}" "$2" > "$work/$1.log" 2>&1 &
    PID[$1]=$!
    URL[$1]="http://127.0.0.1:$port"
    for _ in $(seq 200); do curl -sf "${URL[$1]}/health" >/dev/null && return; sleep 0.05; done
    echo "$1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}
start azad azad
start azad_small_cache azad 1000
start jwt_authorizer jwt-authorizer
start aliri aliri
PEER_SERVERS="jwt_authorizer aliri"
[ "${PEERS:-1}" = 0 ] && PEER_SERVERS="" # PEERS=0: azad (and BASELINE) only, more rounds in the time
SERVERS="azad $PEER_SERVERS"
if [ -n "${BASELINE:-}" ]; then # another build of peer-server (an earlier commit): before/after in one run
    start azad_baseline azad 10000 "$BASELINE"
    start azad_baseline_small_cache azad 1000 "$BASELINE"
    SERVERS="azad azad_baseline $PEER_SERVERS"
fi

# The server's CPU time in nanoseconds: the sum over its threads of the scheduler's own
# account (/proc/PID/task/*/schedstat, first field), which counts in nanoseconds where
# /proc/PID/stat counts in ticks of 10 ms. (The runtime's threads live as long as the server.)
# A thread that exits between the two readings takes its time with it (tokio's blocking
# threads exit after 10 s idle; the peer servers start none on these paths).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }' || true; }
run() { # variant, server, path, [tokens file]
    local out before after
    before=$(cpu_ns "${PID[$2]}")
    if [ $# -eq 4 ]; then
        out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/rotate.lua "${URL[$2]}$3" -- "$4")
    else
        out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${URL[$2]}$3")
    fi
    after=$(cpu_ns "${PID[$2]}")
    # Non-2xx answers are counted and reported (a harness error is not a measurement).
    if echo "$out" | grep -q "Non-2xx"; then echo "$2 $1: $(echo "$out" | grep "Non-2xx")" >&2; fi
    echo "$out" | awk -v v="$1" -v s="$2" -v t="$((after - before))" '
        function us(x) { if (x ~ /us$/) return x + 0; if (x ~ /ms$/) return x * 1000; if (x ~ /s$/) return x * 1e6; return x }
        / 50%/ { p50 = us($2) } / 99%/ { p99 = us($2) }
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END { printf "%s %s %s %s %s %s\n", s, v, rps, p50, p99, t / 1e3 / n }' >> "$work/results"
}

for server in $SERVERS; do # warm-up: every pool token seen once
    run warmup "$server" /api/me "$work/pool"
done
run warmup azad_small_cache /api/me "$work/pool"
[ -z "${BASELINE:-}" ] || run warmup azad_baseline_small_cache /api/me "$work/pool" 
: > "$work/results"
if [ "${PAIRS:-0}" -gt 0 ]; then
    # PAIRS=N: only the repeated token against `/health` with the same header, on each server
    # (PEERS=0: azad, and BASELINE if given), in N back-to-back pairs of short runs whose order alternates (A B, B A, ...): the
    # host's drift between the two halves of a pair is seconds at most, and the median of the
    # N per-pair differences is the figure. Same columns as the rounds below.
    for pair in $(seq "$PAIRS"); do
        echo "pair $pair/$PAIRS" >&2
        for server in $SERVERS; do
            if [ $((pair % 2)) = 1 ]; then
                run health_with_header "$server" /health "$work/one"
                run repeated_token "$server" /api/me "$work/one"
            else
                run repeated_token "$server" /api/me "$work/one"
                run health_with_header "$server" /health "$work/one"
            fi
        done
    done
    ROUNDS=0
fi
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    for server in $SERVERS; do
        run health "$server" /health
        run health_with_header "$server" /health "$work/one"
        run repeated_token "$server" /api/me "$work/one"
        run pool_of_${POOL} "$server" /api/me "$work/pool"
        if [ "${server#azad}" != "$server" ]; then
            run never_seen "${server}_small_cache" /api/me "$work/never"
        else
            run never_seen "$server" /api/me "$work/never"
        fi
    done
done
uptime >&2
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    server, variant, rps, p50, p99, cpu = line.split()
    server = server.removesuffix("_small_cache")
    rows.setdefault((server, variant), []).append((float(rps), float(p50), float(p99), float(cpu)))
med = statistics.median
def spread(xs, fmt, sep):
    # min–max over a few rounds; the 10th–90th percentiles over many pairs (PAIRS=N).
    if len(xs) >= 10:
        deciles = statistics.quantiles(xs, n=10, method="inclusive")
        lo, hi = deciles[0], deciles[-1]
    else:
        lo, hi = min(xs), max(xs)
    return f"{lo:{fmt}}{sep}{hi:{fmt}}"
# Ratios and added CPU are paired by round: each variant against `/health` with the header of
# the same server in the same round (measured seconds apart), then the median over the
# rounds, so that the host's drift between rounds cancels.
n = max(len(rs) for rs in rows.values())
label = "10th–90th percentile" if n >= 10 else "min–max"
print(f"{n} runs of each variant; spreads are the {label}.")
print()
print("| server | variant | req/s (spread) | p50 µs | p99 µs | server CPU µs/req (spread) | req/s ÷ /health with header (spread) | added CPU µs over /health with header (spread) |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
servers = []
for (s, _) in rows:
    if s not in servers:
        servers.append(s)
for s in servers:
    base = rows.get((s, "health_with_header"))
    for (srv, v), rs in rows.items():
        if srv != s:
            continue
        rps = [r[0] for r in rs]; cpu = [r[3] for r in rs]
        ratio = added = ""
        if base and len(base) == len(rs):
            ratios = [r[0] / b[0] for r, b in zip(rs, base)]
            ratio = f"{med(ratios):.2f} ({spread(ratios, '.2f', '–')})"
            if v not in ("health", "health_with_header"):
                adds = [r[3] - b[3] for r, b in zip(rs, base)]
                added = f"{med(adds):+.2f} ({spread(adds, '+.2f', ' to ')})"
        print(f"| {s} | {v} | {med(rps):,.0f} ({spread(rps, ',.0f', '–')}) | {med([r[1] for r in rs]):.0f} | {med([r[2] for r in rs]):.0f} | {med(cpu):.2f} ({spread(cpu, '.2f', '–')}) | {ratio} | {added} |")
PY
