#!/usr/bin/env bash
# One-shot, idempotent set-up: everything the demo and the tests need, from the registries this
# project may use (Debian, npm, PyPI, the Go module proxy). Safe to run again; fast when done.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KSB_ROOT"
say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages the tests and the Salt module use --------------------------------------
# ufw, firewalld (+ dbus): the host firewall managers of test/salt/test_hostfw_netns.py, run in its
# namespaces only (netfilter-persistent is not installed: ufw Breaks it; the test runs its plugins).
need_pkgs=()
for pair in iptables:iptables ipset:ipset nft:nftables ip:iproute2 redis-server:redis-server tini:tini \
            openssl:openssl nc:netcat-openbsd systemd-analyze:systemd \
            buildah:buildah debootstrap:debootstrap podman:podman runc:runc promtool:prometheus \
            docker-compose:docker-compose ufw:ufw firewalld:firewalld dbus-daemon:dbus; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_pkgs[*]}"
  if [ "$(id -u)" != 0 ]; then say "need root to install ${need_pkgs[*]}"; exit 1; fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- Node.js >= 22.19 ---------------------------------------------------------------------------
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null; then
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

# --- Salt (pinned, with its own pinned dependency lock) in a project virtualenv, plus this
# project's Salt extension (salt/pyproject.toml: saltext.kube_allowlist) installed into it -------
salt_venv() {  # salt_venv DIR LOCK VERSION
  local dir=$1 lock=$2 version=$3 stamp want
  stamp="$dir/.requirements.sha256"
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    command -v "$KSB_PYTHON" >/dev/null || { say "$KSB_PYTHON is required for the Salt virtualenvs"; exit 1; }
    say "creating the Salt $version virtualenv in $dir ($("$KSB_PYTHON" --version))"
    rm -rf "$dir"
    "$KSB_PYTHON" -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip >/dev/null
    "$dir/bin/pip" install -q -r "$lock"
    echo "$want" > "$stamp"
  fi
  # Salt's sdist has installed without its dependencies before: prove the imports work.
  "$dir/bin/python" - "$version" <<'PY'
import sys
import salt.version, salt.client, salt.config, salt.netapi.rest_cherrypy.app, cherrypy, zmq, tornado, pytest
assert salt.version.__version__ == sys.argv[1], (salt.version.__version__, sys.argv[1])
PY
}

# The extension's wheel, built once per source state from a clean copy (setuptools writes build/
# and *.egg-info next to the sources, which would then be served from file_roots).
ext_sources() { (cd salt && find pyproject.toml file_roots/_utils -type f \( -name '*.py' -o -name '*.toml' \) | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1; }
ext_wheel() {  # ext_wheel BUILD_PYTHON -> prints the wheel's path
  local python=$1 sum dir tmp
  sum=$(ext_sources)
  dir="$KSB_ROOT/.tools/dist/$sum"
  if ! ls "$dir"/saltext_kube_allowlist-*.whl >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/src"
    cp -r salt/pyproject.toml "$tmp/src/"
    mkdir -p "$tmp/src/file_roots"
    cp -r salt/file_roots/_utils "$tmp/src/file_roots/"
    find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
    "$python" -m pip wheel -q --no-deps -w "$tmp/out" "$tmp/src" >/dev/null
    rm -rf "$KSB_ROOT/.tools/dist"; mkdir -p "$dir"
    mv "$tmp"/out/saltext_kube_allowlist-*.whl "$dir/"
    rm -rf "$tmp"
  fi
  ls "$dir"/saltext_kube_allowlist-*.whl
}
ext_install() {  # ext_install VENV WHEEL
  local dir=$1 wheel=$2 stamp
  stamp="$dir/.saltext.sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum "$wheel" | cut -d' ' -f1)" ]; then
    # By name from the wheel's directory (not by path), as an operator's pip or salt-pip would: pip
    # then records a plain version, which the formula's pip.installed compares.
    "$dir/bin/pip" install -q --no-deps --force-reinstall --no-index --find-links "$(dirname "$wheel")" \
      "saltext.kube-allowlist==$(basename "$wheel" | cut -d- -f2)"
    sha256sum "$wheel" | cut -d' ' -f1 > "$stamp"
  fi
}

# The default Salt (requirements/salt.txt) and the tested matrix, each in its own virtualenv; the
# extension's wheel installed into every one. KSB_SALT_VENV (scripts/env.sh) selects the one the
# tests and tools use; scripts/test.sh runs the matrix.
made="" wheel=""
for series in "" 3007 3006; do
  lock=requirements/salt${series:+-$series}.txt
  dir=$KSB_ROOT/.tools/salt-${series:-$KSB_SALT_DEFAULT_SERIES}
  made="$made $dir"
  version=$(sed -n 's/^salt==//p' "$lock")
  salt_venv "$dir" "$lock" "$version"
  # Pure Python: one wheel serves every series (built with the first virtualenv's Python).
  [ -n "$wheel" ] || wheel=$(ext_wheel "$dir/bin/python")
  ext_install "$dir" "$wheel"
  say "Salt $version in $dir ($("$dir/bin/python" --version)) with $(basename "$wheel")"
done
case "$made " in
  *" $KSB_VENV "*) ;;
  *) # KSB_SALT_VENV names another Salt virtualenv: it gets the extension too.
     [ -x "$KSB_VENV/bin/salt-call" ] || { say "KSB_SALT_VENV=$KSB_VENV has no salt-call: not a Salt virtualenv"; exit 1; }
     ext_install "$KSB_VENV" "$wheel"
     say "Salt $("$KSB_VENV/bin/salt-call" --version | cut -d' ' -f2) in $KSB_VENV with $(basename "$wheel")";;
esac

# --- linters (ruff, salt-lint) in their own virtualenv -------------------------------------------
lint="$KSB_ROOT/.tools/lint"
want=$(sha256sum requirements/lint.txt | cut -d' ' -f1)
if [ "$(cat "$lint/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  say "creating the linters' virtualenv in $lint"
  rm -rf "$lint"
  "$KSB_PYTHON" -m venv "$lint"
  "$lint/bin/pip" install -q --upgrade pip >/dev/null
  "$lint/bin/pip" install -q -r requirements/lint.txt
  echo "$want" > "$lint/.requirements.sha256"
fi

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
