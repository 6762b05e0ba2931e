#!/usr/bin/env bash
# Builds the container image from the unchanged Dockerfile with buildah (no Docker engine, no
# registry): first a Node.js 22 base image made with debootstrap (Debian minbase + tini) and the
# npm registry's `node` and `npm` packages, cached in $KSB_CACHE keyed by every version that goes
# into it, then `buildah build --isolation chroot --build-arg BASE=<that base>`.
#
#   bash scripts/build-image.sh [--tag NAME] [--save FILE] [--compose-salt]
#     --tag NAME      image name (default localhost/kube-salt-bridge:<package.json version>)
#     --save FILE     also write the image as a docker-archive (`docker load -i FILE`, `podman load`)
#     --compose-salt  also build the compose stack's Salt image (deploy/compose/salt/Dockerfile) on
#                     the same base, as localhost/kube-salt-bridge-compose-salt:local
#
# Prints the image name on stdout (then the Salt image's, with --compose-salt); timings and
# progress on stderr. Needs root, buildah and
# debootstrap (scripts/setup.sh installs both). Safe to run again: the base is reused from the
# local image store or the cache, and buildah's layer cache skips unchanged steps.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KSB_ROOT"
say() { printf '[image] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

tag=""
save=""
compose_salt=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --save) save="${2:?--save needs a file}"; shift 2 ;;
    --compose-salt) compose_salt=localhost/kube-salt-bridge-compose-salt:local; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument: $1"; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, buildah with the system image store)"
for t in buildah debootstrap; do command -v "$t" >/dev/null || die "$t is missing: run scripts/setup.sh"; done

version=$(node -p 'require("./package.json").version')
tag="${tag:-localhost/kube-salt-bridge:$version}"

# --- the base: Debian minbase + tini + Node.js 22 + npm -----------------------------------------
# Bump KSB_BASE_BUILD when the recipe below changes, so cached bases are rebuilt.
KSB_BASE_BUILD=2
suite="${KSB_DEBIAN_SUITE:-bookworm}"
npm_version="${KSB_BASE_NPM_VERSION:-10.9.9}"
key="debian-$suite-node$KSB_NODE_VERSION-npm$npm_version-b$KSB_BASE_BUILD"
base="localhost/kube-salt-bridge-base:$key"
archive="$KSB_CACHE/image-base-$key.tar"

# The Debian mirror apt already uses here (deb822 or one-line sources), unless KSB_DEBIAN_MIRROR.
debian_mirror() {
  if [ -n "${KSB_DEBIAN_MIRROR:-}" ]; then echo "$KSB_DEBIAN_MIRROR"; return; fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  echo "http://deb.debian.org/debian"
}

make_base_archive() {
  local work mirror start
  start=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/ksb-base.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  mirror=$(debian_mirror)
  say "debootstrap --variant=minbase $suite from $mirror (+ tini)"
  if ! debootstrap --variant=minbase --include=tini "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  fi
  local r="$work/rootfs"
  # What a runtime provides (devices, resolver, hostname) and what an image should not carry.
  rm -rf "$r"/dev/* "$r"/proc/* "$r"/sys/* "$r"/run/* "$r"/tmp/* "$r"/var/tmp/* \
         "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
         "$r"/var/log/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/usr/share/doc-base
  find "$r/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  : > "$r/etc/resolv.conf"; : > "$r/etc/hostname"
  # Later apt-get installs in derived images stay slim too.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    > "$r/etc/dpkg/dpkg.cfg.d/kube-salt-bridge-slim"
  printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' > "$r/etc/apt/apt.conf.d/90kube-salt-bridge"

  say "node@$KSB_NODE_VERSION and npm@$npm_version from the npm registry"
  npm install --prefix "$work/npm" --no-save --no-audit --no-fund --no-package-lock \
    "node@$KSB_NODE_VERSION" "npm@$npm_version" >"$work/npm.log" 2>&1 || { tail -n 30 "$work/npm.log" >&2; die "npm install failed"; }
  local nodebin
  nodebin=$(readlink -f "$work/npm/node_modules/node/bin/node")
  [ -x "$nodebin" ] || die "the node package brought no binary"
  install -D -m 0755 "$nodebin" "$r/usr/local/bin/node"
  mkdir -p "$r/usr/local/lib/node_modules"
  cp -a "$work/npm/node_modules/npm" "$r/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  mkdir -p "$r/usr/local/etc"
  printf '%s\n' 'update-notifier=false' 'fund=false' 'audit=false' > "$r/usr/local/etc/npmrc"
  local got
  got=$(chroot "$r" /usr/local/bin/node --version)
  [ "$got" = "v$KSB_NODE_VERSION" ] || die "node in the base is $got, wanted v$KSB_NODE_VERSION"
  got=$(chroot "$r" /usr/local/bin/node /usr/local/bin/npm --version)
  [ "$got" = "$npm_version" ] || die "npm in the base is $got, wanted $npm_version"
  chroot "$r" /usr/bin/tini --version >/dev/null || die "tini does not run in the base"

  mkdir -p "$KSB_CACHE"
  tar -C "$r" --numeric-owner --xattrs -cf "$archive.tmp.$$" .
  mv "$archive.tmp.$$" "$archive"
  rm -rf "$work"; trap - EXIT
  say "base archive $(du -h "$archive" | cut -f1) made in $(( $(date +%s) - start ))s: $archive"
}

import_base() {
  local c
  c=$(buildah from --quiet scratch)
  # buildah add unpacks a local tar archive into the root.
  buildah add --quiet "$c" "$archive" / >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$KSB_NODE_VERSION" \
    --label org.opencontainers.image.title=kube-salt-bridge-base \
    --label org.opencontainers.image.description="Debian $suite minbase, tini, Node.js $KSB_NODE_VERSION, npm $npm_version" \
    --cmd node "$c"
  buildah commit --quiet --rm "$c" "$base" >/dev/null
}

t0=$(date +%s)
if buildah inspect --type image "$base" >/dev/null 2>&1; then
  say "base $base (in the local image store)"
else
  [ -f "$archive" ] || make_base_archive
  import_base
  say "base $base imported from $archive"
fi
t1=$(date +%s)

# --- the image: the Dockerfile, unchanged ---------------------------------------------------------
# npm in the build stages trusts what this host trusts (a TLS-inspecting proxy's CA, say): the
# host's bundle is the build secret `npm-ca`, mounted for the npm steps only, in no layer.
# The Salt image's pip gets the same bundle as the build secret `pip-ca`.
ca_args=()
ca_file="${KSB_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
if [ -f "$ca_file" ]; then
  ca_args=(--secret "id=npm-ca,src=$(readlink -f "$ca_file")" --secret "id=pip-ca,src=$(readlink -f "$ca_file")")
fi
say "buildah build --isolation chroot --build-arg BASE=$base -t $tag"
buildah build --isolation chroot --layers --pull=never --format docker \
  --build-arg "BASE=$base" "${ca_args[@]}" -t "$tag" -f Dockerfile . >&2
t2=$(date +%s)
say "base ${t0:+$((t1 - t0))}s, image $((t2 - t1))s, total $((t2 - t0))s"

if [ -n "$save" ]; then
  rm -f "$save"
  buildah push --quiet "$tag" "docker-archive:$save:$tag" >&2
  say "saved $save ($(du -h "$save" | cut -f1))"
fi
echo "$tag"

if [ -n "$compose_salt" ]; then
  t3=$(date +%s)
  say "buildah build -f deploy/compose/salt/Dockerfile --build-arg BASE=$base -t $compose_salt"
  buildah build --isolation chroot --layers --pull=never --format docker \
    --build-arg "BASE=$base" "${ca_args[@]}" -t "$compose_salt" -f deploy/compose/salt/Dockerfile . >&2
  say "compose Salt image $(( $(date +%s) - t3 ))s"
  echo "$compose_salt"
fi
