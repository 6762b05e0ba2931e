{#- Install the backend's tools, make sure the custom modules are on the minion, then converge the
    firewall to the pillar rules and the cached lists: after a pillar change or with the bridge or
    the cluster down, a highstate restores the last good allow-list. boot.sls (included unless
    pillar kube_allowlist:boot:enabled is false) installs the unit that does the same at boot,
    masterless, before the network comes up. #}
{%- from tpldir ~ "/map.jinja" import kube_allowlist with context %}
{%- if kube_allowlist.boot.enabled %}
include:
  - .boot
{%- endif %}

kube_allowlist-init-pkg-installed:
  pkg.installed:
    - pkgs: {{ kube_allowlist.pkgs[kube_allowlist.backend] | json }}

kube_allowlist-init-saltutil-sync_all:
  saltutil.sync_all:
    - refresh: True
    - reload_modules: True

kube_allowlist-init-kube_allowlist-restored:
  kube_allowlist.restored:
    - require:
      - pkg: kube_allowlist-init-pkg-installed
      - saltutil: kube_allowlist-init-saltutil-sync_all
