#!/usr/bin/env bash
# Make sure the servers the tests need are running on loopback, installing them
# from Debian's packages when missing. Idempotent: a running server is left alone.
set -euo pipefail

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >/dev/null
}

wait_for() { # wait_for WHAT COMMAND...
  for _ in $(seq 1 60); do
    if "${@:2}" >/dev/null 2>&1; then echo "$1 is up"; return 0; fi
    sleep 0.5
  done
  echo "$1 did not come up" >&2
  return 1
}

# Headless Chromium and its WebDriver for the demo's browser test.
need_pkg chromium chromium
need_pkg chromedriver chromium-driver

# Redis on 127.0.0.1:6379 (nothing kept on disk).
need_pkg redis-server redis-server redis-tools
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

# PostgreSQL on 127.0.0.1:5432, trust auth, database `test`.
need_pkg pg_ctlcluster postgresql
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi
wait_for postgresql pg_isready -h 127.0.0.1 -p 5432
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  # Fresh cluster: allow trust auth on loopback and create the test database.
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  su postgres -c "psql -c 'select pg_reload_conf()'" >/dev/null
  su postgres -c "createdb test" 2>/dev/null || true
fi
psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null
echo "postgresql database test is reachable"
