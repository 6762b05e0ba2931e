# Sourced by every project script: puts the project's own toolchain first on PATH.
# Node.js >= 22 (provisioned into .tools/node by setup.sh when the machine's node is older),
# the Salt virtualenv (.tools/salt-<series>), the cached kube-apiserver/etcd binaries.
KSB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KSB_ROOT
# The one Node.js pin is .nvmrc (nvm and fnm read it; setup and the image build take it from here).
KSB_NODE_VERSION="$(tr -d ' \n' < "$KSB_ROOT/.nvmrc")"
export KSB_NODE_VERSION
export KSB_K8S_VERSION=v1.35.4
export KSB_ETCD_VERSION=v3.6.5
export KSB_CACHE="${KSB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-salt-bridge}"
# Bump KSB_KUBE_BUILD when the build command changes, so caches are rebuilt.
export KSB_KUBE_BUILD=2
export KSB_KUBE_BIN="$KSB_CACHE/k8s-$KSB_K8S_VERSION-etcd-$KSB_ETCD_VERSION-b$KSB_KUBE_BUILD"
# The Salt virtualenv the tests and tools use: the default series (requirements/salt.txt), or
# KSB_SALT_VENV (scripts/setup.sh makes .tools/salt-<series> for each tested series, e.g.
# KSB_SALT_VENV=$KSB_ROOT/.tools/salt-3006); the Python the Salt virtualenvs are made with.
export KSB_SALT_DEFAULT_SERIES=3008
export KSB_VENV="${KSB_SALT_VENV:-$KSB_ROOT/.tools/salt-$KSB_SALT_DEFAULT_SERIES}"
export KSB_PYTHON="${KSB_PYTHON:-python3.11}"
if [ -x "$KSB_ROOT/.tools/node/node_modules/.bin/node" ]; then
  PATH="$KSB_ROOT/.tools/node/node_modules/.bin:$PATH"
fi
PATH="$KSB_ROOT/node_modules/.bin:$KSB_VENV/bin:$KSB_KUBE_BIN:$PATH"
export PATH
