#!/usr/bin/env bash
# make demo: start a server with embedded defaults in a temporary data dir,
# then with the CLI create a project, a generic secret, a registry secret and
# a config map, list them, delete the project and stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin/coligo
work=$(mktemp -d)
export COLIGO_CONFIG=$work/config.yaml
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== starting coligo server (data dir $work/data, API on a free loopback port)"
"$bin" server --data-dir "$work/data" --api-addr 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
endpoint=
for _ in $(seq 100); do
  endpoint=$(sed -n 's|.*msg="api listening" url=\(http://[^ ]*\)/v2.*|\1|p' "$work/server.log")
  [ -n "$endpoint" ] && break
  sleep 0.1
done
[ -n "$endpoint" ] || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }
echo "== server is at $endpoint"

step "$bin" login --endpoint "$endpoint" --token-file "$work/data/admin.token"
step "$bin" project create --name demo-project
step "$bin" secret create --name api-key --from-literal API_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'demo-password' >"$work/pw"
step "$bin" secret create --name registry-creds --format registry --server registry.example.com --username robot --password-stdin <"$work/pw"
step "$bin" configmap create --name settings --from-literal LOG_LEVEL=info --from-literal REGION=local
step "$bin" secret list
step "$bin" configmap list
step "$bin" secret get --name api-key
step "$bin" project list
step "$bin" project delete --name demo-project --force
step "$bin" project list --all
step "$bin" project delete --name demo-project --hard --force
step "$bin" project list --all

echo
echo "== stopping the server"
kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=
echo "== server log"
cat "$work/server.log"
