{#- Fail closed at boot: install and enable kube-allowlist-restore.service, a oneshot unit that runs
    the masterless restore (salt-call --local kube_allowlist.restore persisted=True) before
    network-pre.target and salt-minion.service. Enabling is the symlink `systemctl enable` would
    make (WantedBy), so it also works where systemd is not running (image builds, chroots); the
    daemon is reloaded only on a host booted with systemd. Settings: pillar kube_allowlist:boot
    (defaults.yaml). #}
{%- from tpldir ~ "/map.jinja" import kube_allowlist with context %}
{%- set boot = kube_allowlist.boot %}
{%- set cache_dir = kube_allowlist.get('cache_dir') or (opts.cachedir ~ '/kube_allowlist') %}
{%- set words = [boot.salt_call, '--local', '--config-dir=' ~ opts.config_dir, '--retcode-passthrough',
                 '--out=json', '--log-level=warning', 'kube_allowlist.restore', 'persisted=True',
                 'cache_dir=' ~ cache_dir] %}
{%- for w in words %}
{%-   if not (w is string and w is match('[A-Za-z0-9_./=:@+-]+\\Z')) %}
{{- raise('kube_allowlist:boot: cannot put ' ~ w ~ ' on the unit\'s ExecStart line (only [A-Za-z0-9_./=:@+-])') }}
{%-   endif %}
{%- endfor %}
{%- set unit = boot.unit_dir ~ '/kube-allowlist-restore.service' %}

kube_allowlist-boot-file-unit:
  file.managed:
    - name: {{ unit | json }}
    - source: salt://{{ tpldir }}/files/kube-allowlist-restore.service
    - template: jinja
    - makedirs: True
    - mode: '0644'
    - context:
        exec_start: {{ words | join(' ') | json }}
        cache_dir: {{ cache_dir | json }}
        wanted_by: {{ boot.wanted_by | json }}

kube_allowlist-boot-file-enabled:
  file.symlink:
    - name: {{ (boot.unit_dir ~ '/' ~ boot.wanted_by ~ '.wants/kube-allowlist-restore.service') | json }}
    - target: {{ unit | json }}
    - makedirs: True
    - require:
      - file: kube_allowlist-boot-file-unit

kube_allowlist-boot-cmd-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onlyif: test -d /run/systemd/system
    - onchanges:
      - file: kube_allowlist-boot-file-unit
      - file: kube_allowlist-boot-file-enabled
