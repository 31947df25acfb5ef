#!/usr/bin/env bash
# ensure-redis.sh HOST:PORT — make sure a Redis answers PING at HOST:PORT.
# When none does and the address is local, install Debian's redis-server if it is missing
# (apt-get, as root or with sudo) and start one in the background that keeps nothing on
# disk. A Redis that is already running is left alone.
set -euo pipefail

addr=${1:-127.0.0.1:6379}
host=${addr%:*}
port=${addr##*:}

ping_redis() {
  # Speak RESP over bash's /dev/tcp so that no client needs installing.
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply=""
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [[ $reply == +PONG* ]]
}

if ping_redis; then
  echo "redis: answering at $addr"
  exit 0
fi

case $host in
  127.0.0.1 | localhost | ::1) ;;
  *) echo "redis: nothing answers at $addr and it is not local; start it or set TEST_REDIS_ADDR" >&2; exit 1 ;;
esac

if ! command -v redis-server >/dev/null; then
  echo "redis: installing Debian's redis-server"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q redis-server >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q redis-server >/dev/null
  }
  # The package may start a service of its own on 6379; that one is then used.
  sleep 1
  if ping_redis; then
    echo "redis: answering at $addr"
    exit 0
  fi
fi

dir=${TMPDIR:-/tmp}/portico-redis-$port
mkdir -p "$dir"
echo "redis: starting redis-server on $addr (data in memory only, log in $dir)"
redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
for _ in $(seq 50); do
  if ping_redis; then
    echo "redis: answering at $addr"
    exit 0
  fi
  sleep 0.1
done
echo "redis: started but not answering at $addr; see $dir/redis.log" >&2
exit 1
