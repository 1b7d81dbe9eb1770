#!/usr/bin/env bash
# Sourced by test.sh (and bench.sh) after parts.sh: a real single-node
# Kubernetes cluster on this machine, built and started by our own scripts,
# with nothing downloaded from outside the Go module proxy and Debian.
#
#   kube-apiserver, -controller-manager, -scheduler, kubelet   built by scripts/kube-build.sh (cached by version)
#   etcd                                                       Debian's etcd-server
#   containerd with the CRI plugin                             its own root, state and socket under $PARTS
#   pod network                                                CNI bridge $KUBE_BRIDGE, $KUBE_POD_CIDR
#   sandbox image                                              scripts/pause, built here and imported
#
# Exports COLIGO_TEST_KUBECONFIG (an admin kubeconfig),
# COLIGO_TEST_KUBE_ENGINE_KUBECONFIG (user coligo-engine, no rights until a
# test binds deploy/kubernetes/rbac.yaml's ClusterRole to it) and
# COLIGO_TEST_KUBE_GATEWAY (the node's address on the pod bridge, where pods
# reach processes on this host). Everything listens on loopback or on the
# bridge; kube_stop (called by parts_stop) tears the bridge down. The
# processes are disowned: the API server outlives the 5 s SIGTERM wait of
# parts_stop, and its SIGKILL is expected.

KUBE_BRIDGE=coligo-kube0
KUBE_POD_CIDR=10.217.0.0/24
KUBE_NODE_IP=10.217.0.1
KUBE_SERVICE_CIDR=10.219.0.0/24
KUBE_NODE=coligo-test-node

kube_install() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ctr >/dev/null || missing+=(containerd)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

kube_wait() { # what, seconds, command...
  local what=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$what did not come up; its log:" >&2
  tail -40 "$K/$what.log" >&2 || true
  return 1
}

kube_start() {
  local bin
  bin=$(scripts/kube-build.sh)
  K="$PARTS/kube"
  mkdir -p "$K"/{certs,cni,etcd,kubelet,pod-logs,ipam}
  export K

  # A CA, the API server's serving certificate and the service account keys.
  (
    cd "$K/certs"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=coligo-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.219.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 -extfile san.ext 2>/dev/null
    # The API server's client certificate for kubelets (logs, exec).
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet.key -out apiserver-kubelet.csr -subj "/O=system:masters/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver-kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver-kubelet.crt -days 2 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  # An admin, and the user coligo's engine runs as in the tests: it may do
  # only what deploy/kubernetes/rbac.yaml grants (the tests bind it).
  local token engine_token
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  engine_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s,coligo-test-admin,coligo-test-admin,"system:masters"\n%s,coligo-engine,coligo-engine\n' "$token" "$engine_token" >"$K/tokens.csv"

  local etcd_port peer_port api_port kubelet_port healthz_port sched_port cm_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  kubelet_port=$(free_port); healthz_port=$(free_port); sched_port=$(free_port); cm_port=$(free_port)

  cat >"$K/kubeconfig" <<YML
apiVersion: v1
kind: Config
clusters:
- name: coligo-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $K/certs/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: coligo-test
  context: {cluster: coligo-test, user: admin}
current-context: coligo-test
YML
  sed "s/token: $token/token: $engine_token/" "$K/kubeconfig" >"$K/engine.kubeconfig"

  etcd --name coligo-test --data-dir "$K/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "coligo-test=http://127.0.0.1:$peer_port" >"$K/etcd.log" 2>&1 &
  parts_pids+=($!); disown $!

  "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$K/certs/apiserver.crt" --tls-private-key-file "$K/certs/apiserver.key" \
    --token-auth-file "$K/tokens.csv" --authorization-mode Node,RBAC \
    --service-account-key-file "$K/certs/sa.pub" --service-account-signing-key-file "$K/certs/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range "$KUBE_SERVICE_CIDR" \
    --kubelet-client-certificate "$K/certs/apiserver-kubelet.crt" --kubelet-client-key "$K/certs/apiserver-kubelet.key" \
    --kubelet-preferred-address-types InternalIP >"$K/apiserver.log" 2>&1 &
  parts_pids+=($!); disown $!
  kube_wait apiserver 60 curl -sf --cacert "$K/certs/ca.crt" -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz"

  "$bin/kube-controller-manager" --kubeconfig "$K/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$cm_port" --root-ca-file "$K/certs/ca.crt" \
    --service-account-private-key-file "$K/certs/sa.key" --use-service-account-credentials=false \
    --allocate-node-cidrs=false >"$K/controller-manager.log" 2>&1 &
  parts_pids+=($!); disown $!
  "$bin/kube-scheduler" --kubeconfig "$K/kubeconfig" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$sched_port" >"$K/scheduler.log" 2>&1 &
  parts_pids+=($!); disown $!

  # The pod network: a bridge whose gateway address is the node's IP.
  ip link add "$KUBE_BRIDGE" type bridge 2>/dev/null || true
  ip addr replace "$KUBE_NODE_IP/24" dev "$KUBE_BRIDGE"
  ip link set "$KUBE_BRIDGE" up
  cat >"$K/cni/10-coligo-kube.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "coligo-kube",
  "plugins": [
    {"type": "bridge", "bridge": "$KUBE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$K/ipam", "ranges": [[{"subnet": "$KUBE_POD_CIDR", "gateway": "$KUBE_NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
JSON

  # containerd with the CRI plugin. These machines refuse a negative
  # oom_score_adj (restrict_oom_score_adj) and mount cgroups in hybrid mode
  # (cgroupfs); the test registry speaks plain HTTP (the mirror entry).
  mkdir -p "$K/containerd"
  cat >"$K/containerd/config.toml" <<TOML
version = 2
root = "$K/containerd/root"
state = "$K/containerd/state"
[grpc]
  address = "$K/containerd/containerd.sock"
[ttrpc]
  address = "$K/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "coligo.test/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$COLIGO_TEST_CNI_BIN_DIR"
    conf_dir = "$K/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$COLIGO_TEST_REGISTRY"]
    endpoint = ["http://$COLIGO_TEST_REGISTRY"]
TOML
  containerd --config "$K/containerd/config.toml" >"$K/containerd.log" 2>&1 &
  parts_pids+=($!); disown $!
  kube_wait containerd 20 test -S "$K/containerd/containerd.sock"
  go run ./scripts/pushimage -tar "$K/pause.tar" ./scripts/pause coligo.test/pause:1
  ctr -a "$K/containerd/containerd.sock" -n k8s.io images import "$K/pause.tar" >/dev/null

  cat >"$K/kubelet.yaml" <<YML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $KUBE_NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$K/containerd/containerd.sock
podLogsDir: $K/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $K/certs/ca.crt}
authorization: {mode: Webhook}
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
YML
  "$bin/kubelet" --config "$K/kubelet.yaml" --kubeconfig "$K/kubeconfig" --root-dir "$K/kubelet" \
    --hostname-override "$KUBE_NODE" --node-ip "$KUBE_NODE_IP" >"$K/kubelet.log" 2>&1 &
  parts_pids+=($!); disown $!
  kube_wait kubelet 120 kube_node_ready
  export COLIGO_TEST_KUBECONFIG="$K/kubeconfig" COLIGO_TEST_KUBE_ENGINE_KUBECONFIG="$K/engine.kubeconfig" COLIGO_TEST_KUBE_GATEWAY="$KUBE_NODE_IP"
  echo "== kube: $("$bin/kube-apiserver" --version) at https://127.0.0.1:$api_port, node $KUBE_NODE ready, pods on $KUBE_POD_CIDR"
}

kube_node_ready() {
  local api token
  api=$(sed -n 's/^ *server: //p' "$K/kubeconfig")
  token=$(sed -n 's/^ *token: //p' "$K/kubeconfig")
  curl -sf --cacert "$K/certs/ca.crt" -H "Authorization: Bearer $token" "$api/api/v1/nodes/$KUBE_NODE" |
    tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}

# kube_stop_pods (called by parts_stop before it ends the processes) kills
# every pod container, which would outlive its shim; kube_stop (after) removes
# the bridge, the one thing left outside $PARTS.
kube_stop_pods() {
  local sock="$K/containerd/containerd.sock" id
  [ -S "$sock" ] || return 0
  for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
}

kube_stop() {
  ip link del "$KUBE_BRIDGE" 2>/dev/null || true
}
