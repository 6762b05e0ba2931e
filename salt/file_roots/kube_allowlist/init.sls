{#- Install the backend's tools and the Salt extension saltext.kube_allowlist into the minion's own
    Python, then converge the firewall to the pillar rules and the cached lists: after a pillar
    change or with the bridge or the cluster down, a highstate restores the last good allow-list.
    boot.sls (included unless pillar kube_allowlist:boot:enabled is false) installs the unit that
    does the same at boot, masterless, before the network comes up.

    kube_allowlist:install:method `pip` (default): pip.installed into Salt's Python (salt-pip on
    onedir installs, else the Python running this minion; `bin_env` overrides), from `index_url` /
    `find_links` when given. `sync`: the fallback for minions that cannot install packages,
    saltutil.sync_all from this file_roots tree (_modules/_states/_runners shims and the
    package's sources under _utils). #}
{%- from tpldir ~ "/map.jinja" import kube_allowlist with context %}
{%- set install = kube_allowlist.install %}
{%- if install.method not in ('pip', 'sync') %}
{{-   raise('kube_allowlist:install:method: ' ~ install.method ~ ' is not one of pip, sync') }}
{%- endif %}
{%- if kube_allowlist.boot.enabled %}
include:
  - .boot
{%- endif %}

kube_allowlist-init-pkg-installed:
  pkg.installed:
    - pkgs: {{ kube_allowlist.pkgs[kube_allowlist.backend] | json }}

{%- if install.method == 'pip' %}
{%-   set onedir_pip = '/opt/saltstack/salt/salt-pip' %}
{%-   set bin_env = install.bin_env or (onedir_pip if salt['file.file_exists'](onedir_pip) else grains.pythonexecutable) %}

kube_allowlist-init-pip-installed:
  pip.installed:
    - name: {{ install.requirement | json }}
    - bin_env: {{ bin_env | json }}
    - no_deps: True
{%-   if install.index_url %}
    - index_url: {{ install.index_url | json }}
{%-   endif %}
{%-   if install.find_links %}
    - find_links: {{ install.find_links | json }}
    - no_index: True
{%-   endif %}
    - reload_modules: True
{%- else %}

kube_allowlist-init-saltutil-sync_all:
  saltutil.sync_all:
    - refresh: True
    - reload_modules: True
{%- endif %}

kube_allowlist-init-kube_allowlist-restored:
  kube_allowlist.restored:
    - require:
      - pkg: kube_allowlist-init-pkg-installed
{%- if install.method == 'pip' %}
      - pip: kube_allowlist-init-pip-installed
{%- else %}
      - saltutil: kube_allowlist-init-saltutil-sync_all
{%- endif %}
