#!/usr/bin/env bash
# MSAL conformance suite: Microsoft's own client library (MSAL for Python) against the dev
# tenant over HTTPS, every token it obtains then validated by azad (the quickstart API).
#
#   bash tests/msal/run.sh        # last line: pytest's summary
#
# Creates target/msal-venv (pinned msal and pytest from PyPI) if missing, builds and starts
# `examples/dev_tenant --https --json` and the quickstart pointed at it, runs the suite, and
# stops both. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${MSAL_VENV:-target/msal-venv}
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/msal/requirements.txt "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/msal/requirements.txt
    cp tests/msal/requirements.txt "$VENV/requirements.txt"
fi
cargo build --quiet --example dev_tenant --example quickstart

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DEV_PORT=$(free_port)
PORT=$DEV_PORT RUST_LOG=warn "$TARGET/debug/examples/dev_tenant" --https --json "$work/dev.json" > "$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/dev.json" ] && break; sleep 0.1; done
[ -s "$work/dev.json" ] || { cat "$work/dev.log"; echo "the dev tenant did not start" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/dev.json" "$1"; }
CA=$(field ca_file)

API_PORT=$(free_port)
AZURE_TENANT_ID=$(field tenant_id) \
AZURE_CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"]["client_id"])' "$work/dev.json") \
AZURE_AUTHORITY_HOST=$(field authority_host) AZAD_EXTRA_CA_CERTS=$CA PORT=$API_PORT RUST_LOG=warn \
    "$TARGET/debug/examples/quickstart" > "$work/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$API_PORT/health" > /dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$API_PORT/health" > /dev/null || { cat "$work/api.log"; echo "the quickstart did not start" >&2; exit 1; }

status=0
AZAD_DEV_SETTINGS="$work/dev.json" AZAD_API_URL="http://127.0.0.1:$API_PORT" \
    REQUESTS_CA_BUNDLE="$CA" SSL_CERT_FILE="$CA" NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" \
    "$VENV/bin/pytest" -q -p no:cacheprovider tests/msal 2>&1 | tee "$work/pytest.log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- dev tenant log"; tail -n 20 "$work/dev.log"
    echo "--- quickstart log"; tail -n 20 "$work/api.log"
    tail -n 1 "$work/pytest.log"
fi
exit "$status"
