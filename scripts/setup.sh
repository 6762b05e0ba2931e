#!/usr/bin/env bash
# One-shot, idempotent set-up: everything the demo and the tests need, from the registries this
# project may use (Debian, npm, PyPI, the Go module proxy). Safe to run again; fast when done.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KSB_ROOT"
say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages the tests and the Salt module use --------------------------------------
need_pkgs=()
for pair in iptables:iptables ipset:ipset nft:nftables ip:iproute2 redis-server:redis-server \
            openssl:openssl nc:netcat-openbsd systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_pkgs[*]}"
  if [ "$(id -u)" != 0 ]; then say "need root to install ${need_pkgs[*]}"; exit 1; fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- Node.js >= 22 ---------------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major node)" -lt 22 ] || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)'; then
  say "machine node is $(node --version 2>/dev/null || echo missing); provisioning node@$KSB_NODE_VERSION from the npm registry"
  mkdir -p .tools/node
  npm install --prefix .tools/node --no-save --no-audit --no-fund "node@$KSB_NODE_VERSION" >/dev/null
  . scripts/env.sh
fi
say "node $(node --version) at $(command -v node)"

# --- npm dependencies -------------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi

# --- Salt (pinned, with its own pinned dependency lock) in a project virtualenv ---------------
stamp="$KSB_VENV/.requirements.sha256"
want=$(sha256sum requirements/salt.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "creating Salt virtualenv in $KSB_VENV"
  rm -rf "$KSB_VENV"
  python3 -m venv "$KSB_VENV"
  "$KSB_VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$KSB_VENV/bin/pip" install -q -r requirements/salt.txt
  echo "$want" > "$stamp"
fi
# Salt's sdist has installed without its dependencies before: prove the imports work.
"$KSB_VENV/bin/python" - <<'PY'
import salt.version, salt.client, salt.config, salt.netapi.rest_cherrypy.app, cherrypy, zmq, tornado, pytest
assert salt.version.__version__ == "3007.13", salt.version.__version__
PY

# --- kube-apiserver + etcd, built from Go modules, cached by version -----------------------------
if [ ! -x "$KSB_KUBE_BIN/kube-apiserver" ] || [ ! -x "$KSB_KUBE_BIN/etcd" ]; then
  command -v go >/dev/null || { say "go is required to build kube-apiserver $KSB_K8S_VERSION"; exit 1; }
  say "building kube-apiserver $KSB_K8S_VERSION and etcd $KSB_ETCD_VERSION from Go modules (first run only; about 5 minutes on 2 cores)"
  start=$(date +%s)
  tmp="$KSB_KUBE_BIN.tmp.$$"
  mkdir -p "$tmp"
  minor=${KSB_K8S_VERSION#v1.}; minor=${minor%%.*}
  vflags="-X k8s.io/component-base/version.gitVersion=$KSB_K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  (cd tools/kube && go build -trimpath -ldflags="-s -w $vflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
                 && go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$KSB_KUBE_BIN"; mv "$tmp" "$KSB_KUBE_BIN"
  say "built in $(( $(date +%s) - start ))s into $KSB_KUBE_BIN"
fi
# No `| head` here: under pipefail, head closing the pipe early kills the writer with SIGPIPE (141).
say "$("$KSB_KUBE_BIN/kube-apiserver" --version)"
etcd_version=$("$KSB_KUBE_BIN/etcd" --version)
say "${etcd_version%%$'\n'*}"
say "ready"
