# Shared by the scripts that start a real server for the tests (ci/llama-server.sh,
# ci/phoenix.sh): one way to say things, find our server by its PID file, pick a port, wait for
# it to answer and stop it, so that each script holds only what is particular to its server.
#
# Sourced, not run. The sourcing script sets, before it calls any of these:
#   SERVER_NAME   the prefix of every message (`phoenix: …`)
#   SERVER_MATCH  a text of the server's command line: a PID whose command line lacks it is a
#                 recycled PID, not our server
#   STATE, PID_FILE, LOG_FILE, ENV_FILE   where the state of a started server lives
# and defines cmd_install and cmd_start. It ends with `dispatch "$@"`.

say() { printf '%s: %s\n' "$SERVER_NAME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$SERVER_NAME" "$*" >&2
  exit 1
}

# PID from the PID file, if that process is still our server.
running_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # A recycled PID must not be mistaken for the server.
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$SERVER_MATCH" || return 1
  printf '%s\n' "$pid"
}

# A port nothing listens on now (the kernel's choice), on 127.0.0.1.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_ready PID TIMEOUT WHAT CHECK...: runs CHECK until it succeeds. Dies, with the end of the
# log, when the server exits first or TIMEOUT seconds pass (then it is stopped first).
wait_ready() {
  local pid=$1 timeout=$2 what=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log
      rm -f "$PID_FILE"
      if declare -F after_stop >/dev/null; then after_stop; fi
      die "the server exited before $what answered"
    fi
    if ((SECONDS >= deadline)); then
      show_log
      cmd_stop
      die "$what did not answer within ${timeout} s; server killed"
    fi
    sleep 0.2
  done
}

# uv_bin UV_VENV UV_VERSION: prints the path of uv, installed from PyPI into a venv of its own
# the first time (uv installs a big venv in seconds where pip takes a minute); fails when it
# cannot be installed, leaving nothing half made.
uv_bin() {
  local venv=$1 version=$2
  if [[ ! -x $venv/bin/uv ]]; then
    say "installing uv $version (from PyPI) into $venv"
    rm -rf "$venv"
    if ! { python3 -m venv "$venv" && "$venv/bin/python" -m pip --quiet install "uv==$version"; } >&2; then
      rm -rf "$venv"
      return 1
    fi
  fi
  printf '%s\n' "$venv/bin/uv"
}

show_log() {
  say "server log ($LOG_FILE), last 30 lines:"
  tail -n 30 "$LOG_FILE" >&2 || true
}

# SIGTERM, up to 10 s to go, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# Stops the server started from $STATE, if it runs; then calls `after_stop` if the script has one.
cmd_stop() {
  local pid
  if pid=$(running_pid); then
    stop_pid "$pid"
    say "stopped (pid $pid)"
  else
    say "no server running from $STATE"
  fi
  if declare -F after_stop >/dev/null; then after_stop; fi
  rm -f "$PID_FILE" "$ENV_FILE"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    say "running (pid $pid)"
    [[ -f $ENV_FILE ]] && cat "$ENV_FILE"
  else
    say "not running (state dir $STATE)"
    return 1
  fi
}

dispatch() {
  case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
      printf 'usage: %s install|start|stop|status\n' "$0" >&2
      exit 2
      ;;
  esac
}
