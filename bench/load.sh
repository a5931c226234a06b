#!/usr/bin/env bash
# Load benchmark of the quickstart server: the protected route against /health on the same
# server, one run, with wrk (Debian package `wrk`). Release build; the dev tenant runs as its
# own process and the quickstart protects itself with it through AZURE_* variables, as it would
# with a real tenant.
#
#   bash bench/load.sh            # prints the request rates and their ratios
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
cargo build --release --quiet --example quickstart --example dev_tenant
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

DEV_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$DEV_PORT RUST_LOG=warn target/release/examples/dev_tenant --tokens 1000 --out "$work/tokens" > "$work/dev.log" &
for _ in $(seq 100); do [ -s "$work/tokens" ] && break; sleep 0.1; done
TENANT=$(awk '/AZURE_TENANT_ID=/{sub(/.*=/,""); print}' "$work/dev.log")
CLIENT=$(awk '/AZURE_CLIENT_ID=/{sub(/.*=/,""); print $1}' "$work/dev.log")
head -n 1 "$work/tokens" > "$work/one"
AZURE_TENANT_ID=$TENANT AZURE_CLIENT_ID=$CLIENT AZURE_AUTHORITY_HOST=http://127.0.0.1:$DEV_PORT PORT=$API_PORT RUST_LOG=warn \
    target/release/examples/quickstart > "$work/api.log" &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$API_PORT/health" >/dev/null && break; sleep 0.1; done

run() { # url, [tokens file] -> requests per second (fails on any non-2xx answer)
    local out
    if [ $# -eq 2 ]; then
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s bench/rotate.lua "$1" -- "$2")
    else
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$1")
    fi
    if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers from $1" >&2; exit 1; fi
    echo "$out" | awk '/Requests\/sec/{print $2}'
}
base="http://127.0.0.1:$API_PORT"
run "$base/api/claims" "$work/tokens" > /dev/null # warm-up: every token validated once
: > "$work/results"
# Interleaved rounds, so that a noisy neighbour hits every variant alike; medians reported.
for round in $(seq "${ROUNDS:-3}"); do
    echo "health $(run "$base/health")" >> "$work/results"
    echo "health_with_header $(run "$base/health" "$work/one")" >> "$work/results"
    echo "me_repeated $(run "$base/api/me" "$work/one")" >> "$work/results"
    echo "claims_repeated $(run "$base/api/claims" "$work/one")" >> "$work/results"
    echo "claims_rotating_1000 $(run "$base/api/claims" "$work/tokens")" >> "$work/results"
done
python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rps = line.split()
    runs.setdefault(name, []).append(float(rps))
med = {k: statistics.median(v) for k, v in runs.items()}
for k, v in med.items():
    print(f"{k:22} {v:>10.0f} req/s  (runs: {', '.join(f'{x:.0f}' for x in runs[k])})")
h, hh = med["health"], med["health_with_header"]
print()
print(f"/health with the same Authorization header / /health : {hh / h:.2f}")
for k in ("me_repeated", "claims_repeated", "claims_rotating_1000"):
    print(f"{k:22} / health: {med[k] / h:.2f}   / health with header: {med[k] / hh:.2f}")
PY
