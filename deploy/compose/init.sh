#!/usr/bin/env bash
# Makes the credentials of the compose stack (docker-compose.yml), once, with openssl only:
#
#   deploy/compose/secrets/      (mode 0700; compose secrets, bind-mounted read-only)
#     salt-api-password          the bridge's salt-api password (eauth user kube-salt-bridge)
#     salt-api-users             its SHA-256, the users file of salt/conf/master.d/eauth.conf
#     salt-api-ca.crt            the CA that issued salt-api's certificate (the bridge's salt.caFile)
#     salt-api.crt, .key         salt-api's TLS certificate (DNS:salt-api) and key
#     signing-key                the bridge's Ed25519 private key (base64 of the 32-byte seed)
#     http-token                 bearer token of POST /release (http.tokenFile)
#     kube-token                 the bridge's static Kubernetes token (read Nodes only)
#     k3s-token-auth             that token for k3s's --token-auth-file
#     grafana-admin-password     Grafana's admin password (profile `monitoring`)
#   deploy/compose/generated/pillar/kube_allowlist_keys.sls
#                                the minions' public_keys: the public key of signing-key
#
# An existing file is never overwritten (delete it to make a new one; a new signing-key needs the
# new public key in the pillar, which this script then writes too). The files the bridge reads
# (uid 10001 in its container) are group 10001 and mode 0440 when this runs as root, else 0444
# (the 0700 directory keeps them from other users of this machine; the bridge then warns that
# they are world-readable); the others are 0400.
#
#   bash deploy/compose/init.sh [DIR]    DIR: where secrets/ and generated/ go (default: this folder)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
command -v openssl >/dev/null || { echo "init.sh: openssl is required" >&2; exit 1; }
umask 077
secrets="$out/secrets"
pillar="$out/generated/pillar"
mkdir -p "$secrets" "$pillar"
chmod 0700 "$secrets"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

made=()
# new NAME: true (and remembers NAME) when the file is to be made.
new() { [ -e "$secrets/$1" ] && return 1; made+=("$1"); return 0; }
# put NAME MODE: moves $tmp/NAME into place with MODE; `bridge` for a file the bridge reads.
put() {
  local mode=$2
  if [ "$mode" = bridge ]; then
    if [ "$(id -u)" = 0 ] && chgrp 10001 "$tmp/$1" 2>/dev/null; then mode=0440; else mode=0444; fi
  fi
  chmod "$mode" "$tmp/$1"; mv "$tmp/$1" "$secrets/$1"
}

if new salt-api-password; then
  openssl rand -hex 32 > "$tmp/salt-api-password"
  put salt-api-password bridge
fi
if new salt-api-users; then
  hash=$(tr -d '\n' < "$secrets/salt-api-password" | openssl dgst -sha256 -r | cut -d' ' -f1)
  printf 'kube-salt-bridge:%s\n' "$hash" > "$tmp/salt-api-users"
  put salt-api-users 0400
fi
if new http-token; then
  openssl rand -hex 32 > "$tmp/http-token"
  put http-token bridge
fi
if new kube-token; then
  openssl rand -hex 32 > "$tmp/kube-token"
  put kube-token bridge
fi
if new k3s-token-auth; then
  printf '%s,kube-salt-bridge,kube-salt-bridge\n' "$(cat "$secrets/kube-token")" > "$tmp/k3s-token-auth"
  put k3s-token-auth 0400
fi
if new grafana-admin-password; then
  openssl rand -hex 16 > "$tmp/grafana-admin-password"
  put grafana-admin-password 0444
fi

# salt-api TLS: a CA used once (its key is not kept), and a server certificate for salt-api.
tls_present=0
for f in salt-api.crt salt-api.key salt-api-ca.crt; do [ -e "$secrets/$f" ] && tls_present=$((tls_present + 1)); done
if [ "$tls_present" = 1 ] || [ "$tls_present" = 2 ]; then
  echo "init.sh: only some of salt-api.crt, salt-api.key, salt-api-ca.crt exist: remove them all to make new ones" >&2
  exit 1
fi
if [ "$tls_present" = 0 ]; then
  made+=(salt-api.crt salt-api.key salt-api-ca.crt)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj '/CN=kube-salt-bridge compose CA' \
    -keyout "$tmp/ca.key" -out "$tmp/salt-api-ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=salt-api' \
    -keyout "$tmp/salt-api.key" -out "$tmp/salt-api.csr" 2>/dev/null
  printf 'subjectAltName=DNS:salt-api\nextendedKeyUsage=serverAuth\n' > "$tmp/ext"
  openssl x509 -req -in "$tmp/salt-api.csr" -CA "$tmp/salt-api-ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 825 -extfile "$tmp/ext" -out "$tmp/salt-api.crt" 2>/dev/null
  put salt-api.key 0400
  put salt-api.crt 0444
  put salt-api-ca.crt bridge
fi

# The signing key: an Ed25519 key whose 32-byte seed (the last 32 bytes of its PKCS#8 DER) is
# what the bridge reads, base64; the public key is the last 32 bytes of the SPKI DER, and its key
# id the first 8 bytes of its SHA-256 (docs/event-contract.md, "Keys").
if new signing-key; then
  openssl genpkey -algorithm ed25519 -out "$tmp/ed25519.pem"
  openssl pkey -in "$tmp/ed25519.pem" -outform DER | tail -c 32 | openssl base64 -A > "$tmp/signing-key"
  echo >> "$tmp/signing-key"
  rm -f "$tmp/ed25519.pem"
  put signing-key bridge
fi
seed_der() { # PKCS#8 DER of the seed in signing-key (the fixed Ed25519 prefix, then the seed)
  printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'
  tr -d '\n' < "$secrets/signing-key" | openssl base64 -d -A
}
seed_der > "$tmp/seed.der"
openssl pkey -inform DER -in "$tmp/seed.der" -pubout -outform DER > "$tmp/pub.der"
public=$(tail -c 32 "$tmp/pub.der" | openssl base64 -A)
key_id=$(tail -c 32 "$tmp/pub.der" | openssl dgst -sha256 -binary | head -c 8 | od -An -tx1 | tr -d ' \n')
cat > "$pillar/kube_allowlist_keys.sls.tmp" <<EOF
# Written by deploy/compose/init.sh: the public key of deploy/compose/secrets/signing-key.
kube_allowlist:
  public_keys:
    - "$public"  # key id $key_id
EOF
chmod 0644 "$pillar/kube_allowlist_keys.sls.tmp"
mv "$pillar/kube_allowlist_keys.sls.tmp" "$pillar/kube_allowlist_keys.sls"

if [ ${#made[@]} -gt 0 ]; then echo "made: ${made[*]}"; else echo "all secrets already exist"; fi
echo "signing key id $key_id, public key $public"
