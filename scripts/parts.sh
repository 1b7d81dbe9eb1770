#!/usr/bin/env bash
# Sourced by test.sh (and demo.sh): install the real parts the tests run
# against from Debian's packages, start each with its own state under $PARTS,
# wait until it answers, export its address, and stop it on exit by its pid.
#
#   containerd + runc       COLIGO_TEST_CONTAINERD   (socket)
#   CNI plugins             COLIGO_TEST_CNI_BIN_DIR
#   registry with htpasswd  COLIGO_TEST_REGISTRY (host:port), COLIGO_TEST_REGISTRY_USER/_PASSWORD
#   buildkitd               COLIGO_TEST_BUILDKIT (buildkit_start)
#   Pebble (ACME)           COLIGO_TEST_PEBBLE (the directory of its binaries; tests start it)
#   versitygw (S3) + s3fs   COLIGO_TEST_VERSITYGW (the binary; tests start it)
#   Chromium + axe-core     COLIGO_TEST_CHROMIUM, COLIGO_TEST_AXE (axe.min.js; the console test)

parts_install() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || missing+=(containernetworking-plugins)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v curl >/dev/null || missing+=(curl)
  [ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
  command -v gcc >/dev/null || missing+=(gcc)
  # Function runtimes: Node.js and Debian's Python (not a shim on the PATH).
  [ -x /usr/bin/node ] || missing+=(nodejs)
  ls /usr/bin/python3.1[1-9] >/dev/null 2>&1 || missing+=(python3)
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)
  # Builds: buildkitd fetches Git sources with git, over SSH with ssh.
  command -v git >/dev/null || missing+=(git)
  command -v ssh >/dev/null || missing+=(openssh-client)
  # Persistent data stores: s3fs mounts buckets (FUSE).
  command -v s3fs >/dev/null || missing+=(s3fs)
  # The console's browser test: Debian's Chromium, headless.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

parts_pids=()
parts_stop() {
  local pid
  if [ -n "${K:-}" ]; then kube_stop_pods; fi
  for pid in "${parts_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${parts_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Shims (and their containers) that our containerd started name its socket.
  if [ -n "${PARTS:-}" ]; then
    pkill -KILL -f "containerd-shim.*$PARTS" 2>/dev/null || true
  fi
  # Our containerd mounted its snapshots under $PARTS; nothing else.
  if [ -n "${PARTS:-}" ]; then
    grep -o " $PARTS[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$PARTS"
  fi
  if [ -n "${K:-}" ]; then kube_stop; fi
  # buildkitd's bridge for RUN steps (buildkit_start), and the fence the
  # servers put on it.
  ip link del coligobk0 2>/dev/null || true
  stale_network_clean
  # …and the rules buildkitd's CNI firewall plugin made for it.
  iptables-save -t filter 2>/dev/null | grep '^-A CNI-' | grep -- 'coligobk0' | while read -r rule; do
    eval "iptables -t filter -D ${rule#-A }" 2>/dev/null || true
  done || true
  # The parents of the test builds' cgroups (--buildkit-cgroup).
  rmdir /sys/fs/cgroup/*/coligo-*-builds /sys/fs/cgroup/coligo-*-builds 2>/dev/null || true
}

free_port() {
  go run ./scripts/freeport
}

# stale_network_clean removes fence rules and chains of coligo (projects'
# and builds') whose bridge no longer exists (an interrupted run's), and this suite's test network
# namespaces. A live server's rules, whose bridges exist, are left alone.
stale_network_clean() {
  local ipt rule br chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat; do
      "$ipt-save" -t "$table" 2>/dev/null | grep '^-A ' | grep -E 'coligo (project|build) network' | while read -r rule; do
        br=$(grep -oE 'coligo (project|build) network [A-Za-z0-9_.-]+' <<<"$rule" | head -1 | awk '{print $4}')
        if [ -z "$br" ] || ! ip link show "$br" >/dev/null 2>&1; then
          eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null || true
        fi
      done || true
    done
    "$ipt-save" -t filter 2>/dev/null | grep -oE '^:CLG(B?[IO])-[A-Za-z0-9_.-]+' | tr -d ':' | while read -r chain; do
      case "$chain" in
        CLGB?-*) br=${chain#CLGB?-} ;;
        *) br=clg${chain#CLG?-} ;;
      esac
      if ! ip link show "$br" >/dev/null 2>&1; then
        "$ipt" -t filter -F "$chain" 2>/dev/null || true
        "$ipt" -t filter -X "$chain" 2>/dev/null || true
      fi
    done || true
  done
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^coligo-t-' | xargs -r -n1 ip netns del 2>/dev/null || true
}

parts_start() {
  stale_network_clean
  PARTS=$(mktemp -d /tmp/coligo-parts.XXXXXX)
  # Searchable (not readable) by others, as /run/containerd is: the root of
  # an instance in a user namespace (--userns) reaches its bundle through it.
  chmod 711 "$PARTS"
  export PARTS

  # containerd with its own root, state and socket; the CRI plugin is off.
  mkdir -p "$PARTS/containerd"
  cat >"$PARTS/containerd/config.toml" <<TOML
version = 2
root = "$PARTS/containerd/root"
state = "$PARTS/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$PARTS/containerd/containerd.sock"
[ttrpc]
  address = "$PARTS/containerd/containerd.sock.ttrpc"
TOML
  containerd --config "$PARTS/containerd/config.toml" >"$PARTS/containerd/log" 2>&1 &
  parts_pids+=($!)
  for _ in $(seq 100); do [ -S "$PARTS/containerd/containerd.sock" ] && break; sleep 0.1; done
  [ -S "$PARTS/containerd/containerd.sock" ] || { cat "$PARTS/containerd/log"; echo "containerd did not start" >&2; return 1; }
  export COLIGO_TEST_CONTAINERD="$PARTS/containerd/containerd.sock"

  if [ -x /usr/lib/cni/bridge ]; then export COLIGO_TEST_CNI_BIN_DIR=/usr/lib/cni; else export COLIGO_TEST_CNI_BIN_DIR=/opt/cni/bin; fi

  # A registry with basic auth (bcrypt htpasswd made by our own Go helper).
  local port user pass
  port=$(free_port)
  user=coligo-test
  pass=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$PARTS/registry/data"
  go run ./scripts/htpasswd "$user" "$pass" >"$PARTS/registry/htpasswd"
  cat >"$PARTS/registry/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PARTS/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: coligo-test
    path: $PARTS/registry/htpasswd
YML
  docker-registry serve "$PARTS/registry/config.yml" >"$PARTS/registry/log" 2>&1 &
  parts_pids+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$PARTS/registry/log"; echo "registry did not start" >&2; return 1; }
  export COLIGO_TEST_REGISTRY="127.0.0.1:$port" COLIGO_TEST_REGISTRY_USER="$user" COLIGO_TEST_REGISTRY_PASSWORD="$pass"
  COLIGO_TEST_PEBBLE=$(scripts/pebble-build.sh)
  COLIGO_TEST_VERSITYGW=$(scripts/versitygw-build.sh)
  COLIGO_TEST_AXE=$(scripts/axe-fetch.sh)
  export COLIGO_TEST_PEBBLE COLIGO_TEST_VERSITYGW COLIGO_TEST_AXE COLIGO_TEST_CHROMIUM=/usr/bin/chromium
  echo "== parts: containerd at $COLIGO_TEST_CONTAINERD, registry at $COLIGO_TEST_REGISTRY, CNI plugins in $COLIGO_TEST_CNI_BIN_DIR"
}

# buildkit_start starts buildkitd (built by scripts/buildkit-build.sh,
# cached by version) with its OCI worker on the machine's runc, its own
# root, and a bridge of its own (coligobk0, 10.218.0.0/16) for RUN steps;
# it pulls from and pushes to the test registry over plain HTTP.
#
#   buildkitd               COLIGO_TEST_BUILDKIT (address), COLIGO_TEST_BUILDKIT_BRIDGE
buildkit_start() {
  local bin
  bin=$(scripts/buildkit-build.sh)
  mkdir -p "$PARTS/buildkit"
  cat >"$PARTS/buildkit/buildkitd.toml" <<TOML
root = "$PARTS/buildkit/root"
[grpc]
  address = ["unix://$PARTS/buildkit/buildkitd.sock"]
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  gc = true
  reservedSpace = "1GB"
  maxUsedSpace = "4GB"
  networkMode = "bridge"
  bridgeName = "coligobk0"
  bridgeSubnet = "10.218.0.0/16"
  cniBinaryPath = "$COLIGO_TEST_CNI_BIN_DIR"
[worker.containerd]
  enabled = false
[registry."$COLIGO_TEST_REGISTRY"]
  http = true
TOML
  "$bin" --config "$PARTS/buildkit/buildkitd.toml" >"$PARTS/buildkit/log" 2>&1 &
  parts_pids+=($!)
  for _ in $(seq 200); do [ -S "$PARTS/buildkit/buildkitd.sock" ] && break; sleep 0.1; done
  [ -S "$PARTS/buildkit/buildkitd.sock" ] || { cat "$PARTS/buildkit/log"; echo "buildkitd did not start" >&2; return 1; }
  export COLIGO_TEST_BUILDKIT="unix://$PARTS/buildkit/buildkitd.sock" COLIGO_TEST_BUILDKIT_BRIDGE=coligobk0
  echo "== parts: buildkitd $($bin --version | awk '{print $3}') at $COLIGO_TEST_BUILDKIT"
}
