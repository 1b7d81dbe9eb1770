#!/usr/bin/env bash
# make demo: start containerd and a registry with basic auth (as the tests
# do), build the sample workload image from examples/hello and push it, start
# a coligo server with embedded defaults in a temporary data dir, then with
# the CLI: create a project, a generic secret, a registry secret and a config
# map, list them, run a 5-index job run of the sample and print each index's
# log line; deploy the same image as an app, call its URL through the router,
# wait until it has scaled to zero and call it again to show the cold start;
# create a Node.js function from inline code and call it cold (its code given
# to a pre-warmed runtime) and warm; delete the project, and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
bin=$PWD/bin/coligo
source scripts/parts.sh
parts_install
work=$(mktemp -d)
export COLIGO_CONFIG=$work/config.yaml
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" || true; fi
  parts_stop
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== starting containerd and a registry with basic auth"
parts_start
image=$COLIGO_TEST_REGISTRY/demo/hello:1
echo "== building the sample image from examples/hello (no Docker) and pushing it"
REGISTRY_USER=$COLIGO_TEST_REGISTRY_USER REGISTRY_PASSWORD=$COLIGO_TEST_REGISTRY_PASSWORD go run ./scripts/pushimage ./examples/hello "$image"

echo "== starting coligo server (data dir $work/data, API and router on free loopback ports, apps scale to zero after 5 s idle)"
"$bin" server --data-dir "$work/data" --api-addr 127.0.0.1:0 --router-addr 127.0.0.1:0 --router-tls-addr 127.0.0.1:0 --containerd-address "$COLIGO_TEST_CONTAINERD" \
  --cni-bin-dir "$COLIGO_TEST_CNI_BIN_DIR" --cni-subnet 10.215.0.0/16 --insecure-registry "$COLIGO_TEST_REGISTRY" \
  --autoscale-stable-window 5s --autoscale-panic-window 1s >"$work/server.log" 2>&1 &
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
printf '%s' "$COLIGO_TEST_REGISTRY_PASSWORD" >"$work/pw"
step "$bin" secret create --name registry-creds --format registry --server "$COLIGO_TEST_REGISTRY" --username "$COLIGO_TEST_REGISTRY_USER" --password-stdin <"$work/pw"
step "$bin" configmap create --name settings --from-literal GREETING_NAME=coligo --from-literal LOG_LEVEL=info
step "$bin" secret list
step "$bin" configmap list
step "$bin" secret get --name api-key
step "$bin" job create --name hello --image "$image" --registry-secret registry-creds --env-from-configmap settings --cpu 0.25 --memory 0.5G
step "$bin" jobrun submit --job hello --name hello-run --array-size 5 --wait
step "$bin" jobrun logs --name hello-run
step "$bin" jobrun get --name hello-run

step "$bin" app create --name hello-app --image "$image" --registry-secret registry-creds --env-from-configmap settings --cpu 0.25 --memory 0.5G
url=$("$bin" app get --name hello-app -o url)
step curl -s "$url"
step "$bin" app get --name hello-app
echo
echo "== waiting for hello-app to scale to zero (no requests for the 5 s stable window)"
for _ in $(seq 300); do
  "$bin" revision list --app hello-app -o json | grep -q '"actual_instances": 0' && break
  sleep 0.1
done
step "$bin" revision list --app hello-app
sleep 2 # idle, as apps at zero are between requests; coligo keeps one instance prepared meanwhile
echo
echo "== the first request after scale to zero starts an instance (cold start)"
step curl -s -w 'status %{http_code}, first byte after %{time_starttransfer} s\n' "$url"
step "$bin" app logs --name hello-app

cat > "$work/hello.js" <<'EOF_JS'
function main(args) { return { body: 'hello ' + (args.name || 'world') + ' from a function\n' }; }
module.exports.main = main;
EOF_JS
step "$bin" function runtimes
step "$bin" function create --name hello-fn --runtime nodejs --inline-code "$work/hello.js" --cpu 0.25 --memory 1G
fnurl=$("$bin" function get --name hello-fn -o url)
echo
echo "== waiting for hello-fn to scale to zero (idle for the 5 s stable window); a runtime instance stays pre-warmed"
sleep 8
echo
echo "== the first call gives the code to the pre-warmed runtime (cold), the second finds it running (warm)"
step curl -s -w 'status %{http_code}, first byte after %{time_starttransfer} s\n' "$fnurl?name=cold"
step curl -s -w 'status %{http_code}, first byte after %{time_starttransfer} s\n' "$fnurl?name=warm"
step "$bin" function get --name hello-fn
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
