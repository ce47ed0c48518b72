# Sourced (not run) by the .ci scripts that test against a semsearch of
# their own when not given one: browser.sh, typescript.sh, python-client.sh.
#
#   start_private_server NAME CORPUS
#       a private redis-server on a unix socket in $work (no persistence;
#       PATH's 7.x, else the copy `semsearch redis fetch` keeps in the cache dir),
#       CORPUS written by `semsearch seed`, and `semsearch serve` on a free
#       loopback port with a random API key, waited for until /readyz
#       answers. The binary is $SEMSEARCH_BIN, else target/debug/semsearch
#       built here. Sets url, key, redis_pid and server_pid.
#   stop_private_server
#       stops those two processes, by pid (call it from the EXIT trap).
#
# The caller owns $work (a temp dir) and removes it after stop_private_server.
redis_pid=""
server_pid=""

start_private_server() {
  local name="$1" corpus="$2" bin="${SEMSEARCH_BIN:-}" socket="$work/redis.sock" port ready="" redis_bin
  if [ -z "$bin" ]; then
    cargo build -q
    bin="$PWD/target/debug/semsearch"
  fi
  redis_bin="$("$bin" redis fetch)"
  echo "$name: private redis-server ($redis_bin) on $socket, $(basename "$corpus")"
  "$redis_bin/redis-server" --port 0 --unixsocket "$socket" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do "$redis_bin/redis-cli" -s "$socket" ping >/dev/null 2>&1 && break; sleep 0.1; done
  "$bin" seed "$corpus" --redis-url "unix://$socket" --no-progress

  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  url="http://127.0.0.1:$port"
  key="$name-$RANDOM$RANDOM$RANDOM"
  REDIS_URL="unix://$socket" SEMSEARCH_BIND="127.0.0.1:$port" SEMSEARCH_API_KEYS="$key" RUST_LOG=warn \
    "$bin" serve 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 600); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "$name: semsearch did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    return 1
  fi
}

stop_private_server() {
  # Only the processes start_private_server started, by pid.
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
  server_pid=""
  redis_pid=""
}
