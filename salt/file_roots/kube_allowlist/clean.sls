{#- Undo init.sls: remove every chain, set, table and cache file the module owns, and the boot
    unit. The packages stay: iptables/ipset/nftables are shared with the rest of the system. #}
{%- from tpldir ~ "/map.jinja" import kube_allowlist with context %}
{%- set boot = kube_allowlist.boot %}

kube_allowlist-clean-kube_allowlist-flushed:
  kube_allowlist.flushed

kube_allowlist-clean-file-enabled-absent:
  file.absent:
    - name: {{ (boot.unit_dir ~ '/' ~ boot.wanted_by ~ '.wants/kube-allowlist-restore.service') | json }}

kube_allowlist-clean-file-unit-absent:
  file.absent:
    - name: {{ (boot.unit_dir ~ '/kube-allowlist-restore.service') | json }}
    - require:
      - file: kube_allowlist-clean-file-enabled-absent

kube_allowlist-clean-cmd-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: kube_allowlist-clean-file-unit-absent
