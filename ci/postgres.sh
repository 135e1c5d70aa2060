#!/usr/bin/env bash
# A real PostgreSQL server for the team-store tests: Debian's package, a throwaway cluster in a
# temporary folder, on 127.0.0.1 at a free port, stopped by its PID.
#
#   ci/postgres.sh install   # Debian's postgresql when no initdb is found (apt-get)
#   ci/postgres.sh start     # initdb + start; prints `export ...` lines on stdout
#   ci/postgres.sh stop      # stops the server (fast shutdown, then by PID) and removes its data
#   ci/postgres.sh status    # says whether it runs, and where
#
#   eval "$(ci/postgres.sh start)"   # sets AGENTRACE_PG_URL (postgres://agentrace@127.0.0.1:PORT/postgres)
#
# Environment:
#   AGENTRACE_CI_CACHE   cache dir (default ~/.cache/agentrace-ci): postgres/run holds the state
#   PG_STATE_DIR         where the PID file, log, env file and the cluster go (default: the cache's
#                        postgres/run); give each concurrent server its own
#   PG_PORT              the port (default: a free one, chosen here)
#
# initdb refuses to run as root: as root, the cluster belongs to (and the server runs as) the
# `postgres` user the package creates. Authentication is `trust` on 127.0.0.1 only: a test server.
# Only stdout of `start` is meant for `eval`; everything else this script says goes to stderr.
set -euo pipefail

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
STATE=${PG_STATE_DIR:-$CACHE/postgres/run}
PID_FILE=$STATE/postgres.pid
LOG_FILE=$STATE/postgres.log
ENV_FILE=$STATE/postgres.env
DATA=$STATE/data

SERVER_NAME=postgres
SERVER_MATCH=postgres
# shellcheck source=ci/server-lib.sh
source "$(dirname "$0")/server-lib.sh"

# The newest installed server's bin directory.
pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n $d && -x $d/initdb ]] || return 1
  printf '%s\n' "$d"
}

# Runs a server program as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd_install() {
  # The server's TLS certificate is made with openssl (see make_tls).
  if ! command -v openssl >/dev/null; then
    ((EUID == 0)) || die "openssl is not installed and installing needs root (apt-get install openssl)"
    say "installing openssl"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >&2; } ||
      die "apt-get install openssl failed"
  fi
  if pg_bin >/dev/null; then
    say "already installed: $(pg_bin)"
    return 0
  fi
  ((EUID == 0)) || die "PostgreSQL is not installed and installing needs root (apt-get install postgresql)"
  say "installing Debian's postgresql"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } ||
    die "apt-get install postgresql failed"
  pg_bin >/dev/null || die "no initdb under /usr/lib/postgresql/*/bin after the install"
}

cmd_start() {
  local bin port pid url
  bin=$(pg_bin) || die "PostgreSQL is not installed: run \`$0 install\` first"
  if pid=$(running_pid); then
    die "a server already runs from $STATE (pid $pid); run \`$0 stop\` first or set PG_STATE_DIR"
  fi
  mkdir -p "$STATE"
  rm -rf "$DATA"
  : >"$LOG_FILE"
  if ((EUID == 0)); then chown postgres "$STATE" "$LOG_FILE"; fi
  port=${PG_PORT:-$(free_port)}
  local started=$SECONDS
  as_owner "$bin/initdb" -D "$DATA" -A trust -U agentrace --encoding UTF8 --no-locale \
    >"$LOG_FILE" 2>&1 || { show_log; die "initdb failed"; }
  # TLS too, with a throwaway CA made here (the tests connect with sslmode=require and this
  # CA as sslrootcert, and without TLS; both are allowed on loopback).
  local tls=$STATE/tls
  make_tls "$tls"
  # A throwaway cluster for tests need not survive a power cut: no fsync, no waiting for the
  # WAL at commit (the PostgreSQL pass of .ci/run: 180 s with these, 320 s without, on 2
  # shared, unevenly loaded cores). PG_DURABLE=1 keeps the defaults, for benchmarks.
  local fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [[ ${PG_DURABLE:-} == 1 ]]; then fast=""; fi
  # The socket goes to the state folder, not /var/run; only 127.0.0.1 listens.
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 \
    -o "-p $port -k $STATE -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key $fast" \
    start >/dev/null 2>&1 ||
    { show_log; die "the server did not start"; }
  pid=$(head -1 "$DATA/postmaster.pid")
  printf '%s\n' "$pid" >"$PID_FILE"
  url="postgres://agentrace@127.0.0.1:$port/postgres"
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $url (pid $pid, ready in $((SECONDS - started)) s, log $LOG_FILE)"
  {
    printf 'export AGENTRACE_PG_URL=%q\n' "$url"
    printf 'export PG_SERVER_PID=%q\n' "$pid"
    printf 'export AGENTRACE_PG_CA=%q\n' "$tls/ca.pem"
  } | tee "$ENV_FILE"
}

# A CA and a certificate for 127.0.0.1 signed by it, in $1 (the key readable by the server only).
make_tls() {
  local dir=$1
  command -v openssl >/dev/null || die "openssl is needed for the server's TLS certificate"
  rm -rf "$dir"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=agentrace test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >/dev/null 2>&1 || die "openssl could not make the test CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 ||
    die "openssl could not make the server key"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3 -out "$dir/server.crt" -extfile "$dir/server.ext" >/dev/null 2>&1 ||
    die "openssl could not sign the server certificate"
  chmod 600 "$dir/server.key" "$dir/ca.key"
  chmod 644 "$dir/ca.pem" "$dir/server.crt"
  if ((EUID == 0)); then chown postgres "$dir/server.key" "$dir/server.crt"; fi
}

# Fast shutdown through pg_ctl (it rolls back open sessions at once); by PID if that fails.
cmd_stop() {
  local pid bin
  if pid=$(running_pid); then
    if bin=$(pg_bin) && as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 20 stop >/dev/null 2>&1; then
      say "stopped (pid $pid)"
    else
      stop_pid "$pid"
      say "stopped by its pid ($pid)"
    fi
  else
    say "no server running from $STATE"
  fi
  rm -rf "$DATA"
  rm -f "$PID_FILE" "$ENV_FILE"
}

dispatch "$@"
