{#- Undo init.sls: stop and disable the service, remove the unit and the formula's drop-in, the
    configuration and every secret file, the package with its command, the Node.js the formula
    installed (node:install), and the bridge's salt-api user on this master (eauth:manage: its
    master.d file and users file; logins as that user fail once the users file is gone, and the
    master forgets the user's permissions when it restarts), then the directories init.sls made,
    each only where it is left empty.
    Kept: the bridge's own state directory (config state.dir: its generation counters, so that a
    bridge installed again goes on from them; delete it by hand to start over), the machine's npm
    and Node.js, and whatever else lives under the prefix or the configuration directory. #}
{%- from tpldir ~ "/map.jinja" import kube_salt_bridge as ksb with context %}
{%- set prefix = ksb.prefix %}
{%- set unit = ksb.unit_dir ~ "/kube-salt-bridge.service" %}
{%- set dirs = [unit ~ ".d", ksb.config_dir, prefix ~ "/lib/node_modules", prefix ~ "/lib", prefix ~ "/bin", prefix] %}
{%- set quoted = dirs | map('quote') | join(' ') %}

kube_salt_bridge-clean-service-dead:
  service.dead:
    - name: kube-salt-bridge
    - enable: False
    - onlyif: test -d /run/systemd/system

{#- The link `systemctl disable` removes, also where systemd is not running. #}
kube_salt_bridge-clean-file-enabled-absent:
  file.absent:
    - name: {{ (ksb.unit_dir ~ "/multi-user.target.wants/kube-salt-bridge.service") | json }}
    - require:
      - service: kube_salt_bridge-clean-service-dead

kube_salt_bridge-clean-file-unit-absent:
  file.absent:
    - names:
      - {{ (unit ~ ".d/10-salt-formula.conf") | json }}
      - {{ unit | json }}
    - require:
      - file: kube_salt_bridge-clean-file-enabled-absent

kube_salt_bridge-clean-cmd-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: kube_salt_bridge-clean-file-unit-absent

kube_salt_bridge-clean-file-config-absent:
  file.absent:
    - names:
      - {{ (ksb.config_dir ~ "/config.yaml") | json }}
      - {{ (ksb.config_dir ~ "/credentials") | json }}
    - require:
      - service: kube_salt_bridge-clean-service-dead

kube_salt_bridge-clean-file-package-absent:
  file.absent:
    - names:
      - {{ (prefix ~ "/bin/kube-salt-bridge") | json }}
      - {{ (prefix ~ "/lib/node_modules/kube-salt-bridge") | json }}
{%- if ksb.node.install %}
      - {{ (prefix ~ "/node") | json }}
{%- endif %}
    - require:
      - service: kube_salt_bridge-clean-service-dead

{%- if ksb.eauth.manage %}

kube_salt_bridge-clean-file-eauth-absent:
  file.absent:
    - names:
      - {{ (ksb.eauth.master_d ~ "/kube-salt-bridge-eauth.conf") | json }}
      - {{ ksb.eauth.users_file | json }}
    - require:
      - service: kube_salt_bridge-clean-service-dead
{%- endif %}

{#- Innermost first, so that a parent emptied by its child goes too; a directory holding anything
    else stays, and then nothing runs again. #}
kube_salt_bridge-clean-cmd-dirs-removed:
  cmd.run:
    - name: {{ ('for d in ' ~ quoted ~ '; do if [ -d "$d" ]; then rmdir --ignore-fail-on-non-empty -- "$d"; fi; done') | json }}
    - onlyif: {{ ('find ' ~ quoted ~ ' -maxdepth 0 -type d -empty 2>/dev/null | grep -q .') | json }}
    - require:
      - file: kube_salt_bridge-clean-file-unit-absent
      - file: kube_salt_bridge-clean-file-config-absent
      - file: kube_salt_bridge-clean-file-package-absent
