base:
  'minion-*':
    - kube_allowlist
    # public_keys, written by deploy/compose/init.sh from the bridge's signing key
    - kube_allowlist_keys
