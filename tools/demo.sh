#!/usr/bin/env bash
# make demo [FEED=cmx|firehose|meraki]: a TYS server on a fresh embedded PostgreSQL and
# about a minute of simulated venue traffic through one feed (200 walkers + 100 stationary
# devices, 30 simulated minutes at speed-up 30); then the server's leaderboard and the
# ground-truth accuracy report.
#
#   tools/demo.sh [extra walk options, e.g. --speedup 60 --attendees 500 --noise correlated]
#
# Environment knobs:
#   DEMO_FEED=cmx   (default) CMX POSTs notifications to /notification
#   DEMO_FEED=firehose  the walk serves a fake Cisco Spaces Firehose that the server reads
#                   (a Spaces-only site: no CMX, IP -> device learnt from the stream)
#   DEMO_FEED=meraki    the walk POSTs Scanning API v3 to /meraki once a simulated minute
#                   (a Meraki-only site)
#   DEMO_CMX=fake   (default, CMX feed) walk serves a fake CMX in-process; the server looks
#                   the registering IPs up there (random MACs, as real phones have)
#   DEMO_CMX=test   the server's built-in CMX test mode (MAC 02:00:<IP octets>)
#   DEMO_HASH_KEY=K MAC hashing with salt K on both sides (cmx.mac_hash_key)
#   DEMO_KEEP=1     keep the work directory (server log, report JSON, database)
#   PY              Python to use (default .venv/bin/python); CONFIG (conf/tys.yaml)
# The report is also saved as var/demo-report.json.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CONFIG=${CONFIG:-conf/tys.yaml}
DEMO_CMX=${DEMO_CMX:-fake}
DEMO_FEED=${DEMO_FEED:-cmx}
START_TIMEOUT_S=${DEMO_START_TIMEOUT_S:-120}

log() { printf 'demo: %s\n' "$*" >&2; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tys-demo.XXXXXX")
SERVER_PID=""
cleanup() {
    status=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        log "stopping the server (SIGTERM)"
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server still running after 30 s; SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f $WORK/server.log ]]; then
        log "failed (exit $status); last lines of the server log:"
        tail -n 30 "$WORK/server.log" >&2 || true
    fi
    if [[ ${DEMO_KEEP:-0} == 1 || $status -ne 0 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# A database of its own, so earlier runs' distances do not mix into this report.
export TYS_DATABASE_EMBEDDED_DIR="$WORK/pgdata"
WALK_ARGS=(--attendees 200 --stationary 100 --duration-min 30 --speedup 30 --leaderboard 10
           --feed "$DEMO_FEED")
# Simulated time is squeezed: the walk's first sightings are ~30 minutes old by the
# server's clock when the walkers register, so the IP sightings must outlive that.
feed_site() {
    export TYS_CMX_HOSTS= TYS_FEEDS_CMX_ENABLED=false TYS_LOOKUP_OBSERVED_TTL_S=7200
    WALK_ARGS+=(--mac-mode random)
}
case $DEMO_FEED in
    cmx) ;;
    firehose)
        feed_site
        FIREHOSE_PORT=$(free_port)
        export TYS_FEEDS_SPACES_FIREHOSE_ENABLED=true
        export TYS_FEEDS_SPACES_FIREHOSE_URL="http://127.0.0.1:$FIREHOSE_PORT/api/partners/v1/firehose/events"
        export TYS_FEEDS_SPACES_FIREHOSE_API_KEY=${TYS_FEEDS_SPACES_FIREHOSE_API_KEY:-demo-firehose-key}
        WALK_ARGS+=(--serve-firehose "127.0.0.1:$FIREHOSE_PORT")
        ;;
    meraki)
        feed_site
        export TYS_FEEDS_MERAKI_ENABLED=true
        export TYS_FEEDS_MERAKI_SECRET=${TYS_FEEDS_MERAKI_SECRET:-demo-meraki-secret}
        export TYS_FEEDS_MERAKI_VALIDATOR=${TYS_FEEDS_MERAKI_VALIDATOR:-demo-validator}
        ;;
    *)
        log "DEMO_FEED must be cmx, firehose or meraki, got '$DEMO_FEED'"
        exit 2
        ;;
esac
[[ $DEMO_FEED == cmx ]] || DEMO_CMX=none
case $DEMO_CMX in
    none) ;;
    fake)
        CMX_PORT=$(free_port)
        export TYS_CMX_HOSTS="127.0.0.1:$CMX_PORT"
        export TYS_CMX_IP2MAC_URL='http://{host}/api/location/v2/clients?ipAddress={ip}'
        WALK_ARGS+=(--mac-mode random --serve-cmx "127.0.0.1:$CMX_PORT")
        ;;
    test)
        export TYS_CMX_HOSTS=test
        WALK_ARGS+=(--mac-mode test)
        ;;
    *)
        log "DEMO_CMX must be fake or test, got '$DEMO_CMX'"
        exit 2
        ;;
esac
if [[ -n ${DEMO_HASH_KEY:-} ]]; then
    export TYS_CMX_MAC_HASH_KEY="$DEMO_HASH_KEY"
    WALK_ARGS+=(--hash-key "$DEMO_HASH_KEY")
fi

SERVER_ARGS=(--port "$PORT")
[[ -f $CONFIG ]] && SERVER_ARGS=(--config "$CONFIG" "${SERVER_ARGS[@]}")
log "starting the server on $URL (feed: $DEMO_FEED; CMX: $DEMO_CMX; log: $WORK/server.log)"
"$PY" -m tys_server "${SERVER_ARGS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

log "waiting for $URL/healthz (embedded PostgreSQL may take a few seconds to start)"
deadline=$((SECONDS + START_TIMEOUT_S))
until "$PY" -c 'import sys, urllib.request
try:
    sys.exit(urllib.request.urlopen(sys.argv[1], timeout=2).status != 200)
except Exception:
    sys.exit(1)' "$URL/healthz"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited during start-up"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        log "no healthy server after ${START_TIMEOUT_S}s"
        exit 1
    fi
    sleep 0.5
done

mkdir -p var
log "walking: ${WALK_ARGS[*]} $*"
"$PY" -m tools.cmx_sim walk --server "$URL" "${WALK_ARGS[@]}" \
    --json "$WORK/report.json" "$@"
cp "$WORK/report.json" var/demo-report.json
log "report saved as var/demo-report.json"
