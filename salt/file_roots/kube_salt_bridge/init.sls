{#- Install and run kube-salt-bridge beside this salt-master, the way README "Install: systemd"
    does by hand: Node.js >= 22.19 (from the npm registry's `node` package, or the machine's),
    the npm package, the configuration from pillar, the secrets as 0400 files that the unit loads
    as systemd credentials, the package's own hardened unit (a drop-in points it at this prefix
    and Node.js), the bridge's salt-api user on this master, and the service.
    Pillar: kube_salt_bridge (salt/kube_salt_bridge.pillar.example; defaults in defaults.yaml).
    Secrets are written with show_changes false: they never appear in a state's output.
    clean.sls undoes it. #}
{%- from tpldir ~ "/map.jinja" import kube_salt_bridge as ksb with context %}
{%- set prefix = ksb.prefix %}
{%- set pkg_dir = prefix ~ "/lib/node_modules/kube-salt-bridge" %}
{%- set node_bin = (prefix ~ "/node/node_modules/.bin/node") if ksb.node.install else ksb.node.bin %}
{%- set node_dir = salt['file.dirname'](node_bin) %}
{%- set cred_dir = ksb.config_dir ~ "/credentials" %}
{%- set creds = ksb.credentials %}
{%- set unknown = creds | difference(['salt-api-password', 'signing-key', 'http-token', 'kubeconfigs']) %}
{%- if unknown %}
{{-   raise('kube_salt_bridge:credentials: unknown name(s) ' ~ (unknown | join(', ')) ~ ' (salt-api-password, signing-key, http-token, kubeconfigs)') }}
{%- endif %}
{%- if not ksb.config %}
{{-   raise('kube_salt_bridge:config: missing (the bridge configuration, see examples/config.yaml)') }}
{%- endif %}
{%- set npm_env = [{'PATH': node_dir ~ ':/usr/local/bin:/usr/bin:/bin'}, {'HOME': '/root'}] %}
{%- set q_node = node_bin | quote %}
{%- set npm_flags = '--no-audit --no-fund' %}
{%- set node_spec = ('node@' ~ ksb.node.version) | quote %}
{%- set node_install = ksb.npm ~ ' install --prefix ' ~ ((prefix ~ '/node') | quote) ~ ' --no-save ' ~ npm_flags ~ ' ' ~ node_spec %}
{%- set node_current = 'test "$(' ~ q_node ~ ' --version 2>/dev/null)" = ' ~ (('v' ~ ksb.node.version) | quote) %}
{%- set node_recent = q_node ~ " -e 'const [a, b] = process.versions.node.split(\".\").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)'" %}
{%- set node_too_old = "echo 'kube_salt_bridge: '" ~ q_node ~ "' is missing or older than Node.js 22.19' >&2; exit 1" %}
{%- set pkg_install = ksb.npm ~ ' install --global --prefix ' ~ (prefix | quote) ~ ' ' ~ npm_flags ~ ' ' ~ (ksb.package | quote) %}
{%- set pkg_version = q_node ~ " -p 'require(process.argv[1]).version' " ~ ((pkg_dir ~ '/package.json') | quote) %}
{%- set pkg_current = 'test "$(' ~ pkg_version ~ ' 2>/dev/null)" = ' ~ (ksb.version | quote) %}

{%- if ksb.node.install %}

kube_salt_bridge-init-cmd-node-installed:
  cmd.run:
    - name: {{ node_install | json }}
    - unless: {{ node_current | json }}
    - env: {{ npm_env | json }}
    - require_in:
      - cmd: kube_salt_bridge-init-cmd-node-checked
{%- endif %}

kube_salt_bridge-init-cmd-node-checked:
  cmd.run:
    - name: {{ node_too_old | json }}
    - unless: {{ node_recent | json }}

kube_salt_bridge-init-cmd-package-installed:
  cmd.run:
    - name: {{ pkg_install | json }}
{%- if ksb.version %}
    - unless: {{ pkg_current | json }}
{%- else %}
    - creates: {{ (pkg_dir ~ "/package.json") | json }}
{%- endif %}
    - env: {{ npm_env | json }}
    - require:
      - cmd: kube_salt_bridge-init-cmd-node-checked

kube_salt_bridge-init-file-config-dir:
  file.directory:
    - name: {{ ksb.config_dir | json }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

kube_salt_bridge-init-file-config:
  file.serialize:
    - name: {{ (ksb.config_dir ~ "/config.yaml") | json }}
    - serializer: yaml
    - dataset: {{ ksb.config | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: kube_salt_bridge-init-file-config-dir

kube_salt_bridge-init-file-credentials-dir:
  file.directory:
    - names:
      - {{ cred_dir | json }}
      - {{ (cred_dir ~ "/kubeconfigs") | json }}
    - user: root
    - group: root
    - mode: '0700'
    - require:
      - file: kube_salt_bridge-init-file-config-dir

{%- for name in ['salt-api-password', 'signing-key', 'http-token'] if name in creds %}

kube_salt_bridge-init-file-credential-{{ name }}:
  file.managed:
    - name: {{ (cred_dir ~ "/" ~ name) | json }}
    - contents_pillar: {{ ("kube_salt_bridge:credentials:" ~ name) | json }}
    - contents_newline: False
    - show_changes: False
    - user: root
    - group: root
    - mode: '0400'
    - require:
      - file: kube_salt_bridge-init-file-credentials-dir
{%- endfor %}

{%- for cluster in (creds.get('kubeconfigs') or {}) %}

kube_salt_bridge-init-file-credential-kubeconfig-{{ cluster }}:
  file.managed:
    - name: {{ (cred_dir ~ "/kubeconfigs/" ~ cluster ~ ".yaml") | json }}
    - contents_pillar: {{ ("kube_salt_bridge:credentials:kubeconfigs:" ~ cluster) | json }}
    - show_changes: False
    - user: root
    - group: root
    - mode: '0400'
    - require:
      - file: kube_salt_bridge-init-file-credentials-dir
{%- endfor %}

{#- The package's unit as it ships; a drop-in runs this prefix's command on this Node.js. #}
kube_salt_bridge-init-file-unit:
  file.managed:
    - name: {{ (ksb.unit_dir ~ "/kube-salt-bridge.service") | json }}
    - source: {{ ("file://" ~ pkg_dir ~ "/deploy/systemd/kube-salt-bridge.service") | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - cmd: kube_salt_bridge-init-cmd-package-installed

kube_salt_bridge-init-file-unit-dropin:
  file.managed:
    - name: {{ (ksb.unit_dir ~ "/kube-salt-bridge.service.d/10-salt-formula.conf") | json }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Written by the kube_salt_bridge Salt formula: the bridge of {{ prefix }} on {{ node_bin }}.
        [Service]
        Environment=PATH={{ node_dir }}:/usr/local/bin:/usr/bin:/bin
        ExecStart=
        # --max-semi-space-size=1: the node option of the package's command line (bin/kube-salt-bridge.js says why).
        ExecStart={{ node_bin }} --max-semi-space-size=1 {{ pkg_dir }}/bin/kube-salt-bridge.js run --config {{ ksb.config_dir }}/config.yaml

kube_salt_bridge-init-cmd-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: kube_salt_bridge-init-file-unit
      - file: kube_salt_bridge-init-file-unit-dropin

{%- if ksb.eauth.manage %}
{%-   set password = creds.get('salt-api-password', '') %}
{%-   if not password %}
{{-     raise('kube_salt_bridge:credentials:salt-api-password: required with eauth:manage (the bridge salt-api user password)') }}
{%-   endif %}

kube_salt_bridge-init-file-eauth-conf:
  file.managed:
    - name: {{ (ksb.eauth.master_d ~ "/kube-salt-bridge-eauth.conf") | json }}
    - source: {{ ("file://" ~ pkg_dir ~ "/salt/conf/master.d/eauth.conf") | json }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - cmd: kube_salt_bridge-init-cmd-package-installed

kube_salt_bridge-init-file-eauth-users:
  file.managed:
    - name: {{ ksb.eauth.users_file | json }}
    - contents: {{ (ksb.eauth.user ~ ":" ~ salt['hashutil.sha256_digest'](password)) | json }}
    - show_changes: False
    - makedirs: True
    - user: root
    - group: root
    - mode: '0600'
{%- endif %}

{%- if ksb.service.enable %}

kube_salt_bridge-init-service-running:
  service.running:
    - name: kube-salt-bridge
    - enable: True
    - watch:
      - file: kube_salt_bridge-init-file-config
      - file: kube_salt_bridge-init-file-unit
      - file: kube_salt_bridge-init-file-unit-dropin
      - cmd: kube_salt_bridge-init-cmd-package-installed
{%-   for name in ['salt-api-password', 'signing-key', 'http-token'] if name in creds %}
      - file: kube_salt_bridge-init-file-credential-{{ name }}
{%-   endfor %}
{%-   for cluster in (creds.get('kubeconfigs') or {}) %}
      - file: kube_salt_bridge-init-file-credential-kubeconfig-{{ cluster }}
{%-   endfor %}
    - require:
      - cmd: kube_salt_bridge-init-cmd-daemon-reload
{%- endif %}
