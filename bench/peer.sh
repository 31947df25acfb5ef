#!/usr/bin/env bash
# Portico's gateway as a peer of the shared SNI benchmark (../shared/bench, "Adding a
# peer"). From the repository root:
#
#   EXTRA_PEERS="portico=$PWD/bench/peer.sh" ../shared/bench/run.sh 10000 ecdsa-p256
#
# start: builds certstore, the gateway and importcerts; starts a private Redis and
#        certstore on CPU $CLI_CPU; imports $CERTS (every certificate with a route to the
#        default upstream); then starts the gateway alone on CPU $SRV_CPU with
#        GOMAXPROCS=1, writes its PID to $PDIR/server.pid, and returns once it is ready.
#        Nothing is pre-warmed: the gateway's cache is empty, as after any start.
# stop:  stops exactly what start started (PIDs kept in $PDIR/portico.pids), newest first.
#
# PREBUILT=/dir uses certstore, gateway and importcerts from /dir instead of building them
# from this checkout (to pin the binaries of a run, or while a service is mid-edit).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CMD=${1:-}
: "${PDIR:?PDIR is required (set by run.sh)}"
PIDS=$PDIR/portico.pids

# free_port BASE: the first port at or above BASE nobody listens on.
free_port() {
  local p=$1
  while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

# wait_port HOST:PORT PID SECONDS
wait_port() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

start() {
  : "${LISTEN:?}" "${UPSTREAM:?}" "${CERTS:?}" "${SRV_CPU:?}" "${CLI_CPU:?}"
  local bin=$PDIR/bin
  mkdir -p "$bin" "$PDIR/redis"
  : >"$PIDS"
  if [[ -n ${PREBUILT:-} ]]; then
    cp "$PREBUILT/certstore" "$PREBUILT/gateway" "$PREBUILT/importcerts" "$bin/"
  else
    go build -C "$ROOT/services/certstore" -o "$bin/certstore" .
    go build -C "$ROOT/services/gateway" -o "$bin/gateway" .
    go build -C "$HERE" -o "$bin/importcerts" ./cmd/importcerts
  fi

  # A private Redis: nothing shared with other users of the machine's Redis.
  local redis=127.0.0.1:$(free_port 19300)
  taskset -c "$CLI_CPU" redis-server --bind 127.0.0.1 --port "${redis##*:}" --save "" --appendonly no \
    --dir "$PDIR/redis" >"$PDIR/redis.log" 2>&1 </dev/null &
  echo $! >>"$PIDS"
  wait_port "$redis" "$!" 10 || { echo "peer.sh: redis did not start" >&2; exit 1; }

  local certstore=127.0.0.1:$(free_port 19310)
  taskset -c "$CLI_CPU" "$bin/certstore" -listen "$certstore" -admin-listen "127.0.0.1:$(free_port 19320)" \
    -redis-addr "$redis" -redis-key-prefix bench -kek-file "$PDIR/kek" -kek-create \
    -hostname-extra-tlds test -log-level warn >"$PDIR/certstore.log" 2>&1 </dev/null &
  echo $! >>"$PIDS"
  taskset -c "$CLI_CPU" "$bin/importcerts" -certstore "$certstore" -certs "$CERTS"

  local admin=127.0.0.1:$(free_port 19330)
  env GOMAXPROCS=1 taskset -c "$SRV_CPU" "$bin/gateway" -https-listen "$LISTEN" \
    -http-listen "127.0.0.1:$(free_port 19340)" -admin-listen "$admin" \
    -health-listen "127.0.0.1:$(free_port 19350)" -certstore-addr "$certstore" -upstream "$UPSTREAM" \
    -hostname-extra-tlds test -log-level warn >"$PDIR/gateway.log" 2>&1 </dev/null &
  local gw=$!
  echo "$gw" >>"$PIDS"
  echo "$gw" >"$PDIR/server.pid"
  echo "$admin" >"$PDIR/gateway.admin"

  # Ready means the Watch stream is up: its first RESET has already emptied the (empty)
  # cache, so the cold pass is not disturbed by it.
  local deadline=$((SECONDS + 20))
  until curl -sf "http://$admin/readyz" >/dev/null 2>&1; do
    kill -0 "$gw" 2>/dev/null || { echo "peer.sh: gateway exited" >&2; tail -20 "$PDIR/gateway.log" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "peer.sh: gateway not ready" >&2; exit 1; }
    sleep 0.05
  done
  echo "peer.sh: portico gateway pid $gw on $LISTEN (admin $admin), certstore $certstore, redis $redis"
}

stop() {
  [[ -f $PIDS ]] || return 0
  local pid i
  for pid in $(tac "$PIDS"); do
    kill "$pid" 2>/dev/null || continue
    for i in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$PIDS"
}

case $CMD in
  start) start ;;
  stop) stop ;;
  *) echo "usage: PDIR=... $0 start|stop (see ../shared/bench/README.md)" >&2; exit 2 ;;
esac
