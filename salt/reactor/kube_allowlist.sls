{#- kube-salt-bridge: one reaction, no logic. The whole event data (the signed payload plus Salt's
    _stamp) is passed through as kwarg `payload`; the minions verify and apply it
    (salt/_modules/kube_allowlist.py). Mapped in master.d/reactor.conf to
    kube-salt-bridge/cluster/*/nodes. The json filter renders one flow mapping, which YAML reads
    back unchanged however long the lists are. #}
kube_allowlist_apply:
  local.kube_allowlist.apply:
    - tgt: {{ data['target'] | json }}
    - tgt_type: compound
    - kwarg:
        payload: {{ data | json }}
