{#- Undo init.sls: remove every chain, set, table and cache file the module owns. The packages
    stay: iptables/ipset/nftables are shared with the rest of the system. #}

kube_allowlist-clean-kube_allowlist-flushed:
  kube_allowlist.flushed
