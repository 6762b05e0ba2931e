{#- kube-salt-bridge: the one reaction (docs/event-contract.md, "How it is fired, and who runs it").

    Mapped in master.d/reactor.conf to salt/run/*/ret: the return event of a runner job, which the
    master fires itself and no minion can forge. A minion can put any *data* on the master bus under
    a kube-salt-bridge/... tag: event.send / event.fire_master mark it (`cmd: _minion_event` and
    the sender's `id`), but `preload={"events": [{"tag": ..., "data": ...}]}` makes the master fire
    the data unmarked (the syndic batch form, salt/daemons/masterapi.py `_minion_event`). That batch
    form refuses salt/run/* tags (MINION_EVENT_BLACKLIST), and the single form always carries `cmd`.
    So this reacts only to a successful `runner.event.send` job (the bridge's salt-api call, or
    `salt-run event.send <tag> data='{...}'` on the master) whose data has neither `cmd` nor `id`.

    What it takes from the job, and nothing else:
    - the event's tag, from the runner's arguments: `kube-salt-bridge/cluster/<cluster>/nodes` with
      <cluster> a DNS label; anything else renders nothing;
    - the event's data (the signed payload, plus Salt's `_stamp`), passed as kwarg `payload`; it must
      be given as the `data` keyword (as salt-api's low data does); positional data renders nothing;
    - the optional unsigned hint `minions` in that data, which only narrows the target:
      `I@kube_allowlist:clusters:<cluster> and L@a,b`, 1 to 1,000 ids of [A-Za-z0-9._-]{1,128};
      any other hint renders nothing.
    The target is always the minions whose pillar names the cluster. The json filter renders one
    flow mapping, which YAML reads back unchanged however long the lists are. #}
{%- set ns = namespace(tag=none, payload=none, target=none, ok=true) %}
{%- if data is mapping and 'cmd' not in data and 'id' not in data
      and data.get('fun') == 'runner.event.send'
      and data.get('success') is sameas true and data.get('return') is sameas true %}
  {%- set args = data.get('fun_args') %}
  {%- if args is sequence and args is not string and args is not mapping
        and args | length in (1, 2) and args[-1] is mapping %}
    {%- set kw = args[-1] %}
    {%- if args | length == 1 and kw.keys() | list | sort == ['data', 'tag'] %}
      {%- set ns.tag = kw['tag'] %}
      {%- set ns.payload = kw['data'] %}
    {%- elif args | length == 2 and kw.keys() | list == ['data'] %}
      {%- set ns.tag = args[0] %}
      {%- set ns.payload = kw['data'] %}
    {%- endif %}
  {%- endif %}
{%- endif %}
{%- if ns.tag is string and ns.payload is mapping
      and ns.tag is match('kube-salt-bridge/cluster/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/nodes\\Z') %}
  {%- set target = 'I@kube_allowlist:clusters:' ~ ns.tag.split('/')[2] %}
  {%- if 'minions' not in ns.payload %}
    {%- set ns.target = target %}
  {%- else %}
    {%- set hint = ns.payload['minions'] %}
    {%- if hint is sequence and hint is not string and hint is not mapping
          and 1 <= hint | length <= 1000 %}
      {%- for id in hint %}
        {%- if not (id is string and id is match('[A-Za-z0-9._-]{1,128}\\Z')) %}
          {%- set ns.ok = false %}
        {%- endif %}
      {%- endfor %}
      {%- if ns.ok %}
        {%- set ns.target = target ~ ' and L@' ~ hint | join(',') %}
      {%- endif %}
    {%- endif %}
  {%- endif %}
{%- endif %}
{%- if ns.target %}
kube_allowlist_apply:
  local.kube_allowlist.apply:
    - tgt: {{ ns.target | json }}
    - tgt_type: compound
    - kwarg:
        payload: {{ ns.payload | json }}
{%- endif %}
