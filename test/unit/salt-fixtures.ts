// Bus events captured from a real salt-master 3007.13 through salt-api /events (SSE): reactor
// `local.kube_allowlist.apply` with `kwarg: {payload: {{ data|json }}}` and a stub module. Long
// strings were shortened. See docs/salt-api-notes.md. Each is the parsed `data:` JSON {tag, data}.

import type { BusEvent } from '../../src/seams.ts';

export const saltFixtures = {
  runNew: {
    data: {
      fun: 'runner.event.send',
      jid: '20261122001130211201',
      user: 'ksb',
      fun_args: [
        { tag: 'kube-salt-bridge/cluster/prod/nodes', data: { cluster: 'prod', generation: 3, target: 'm1', digest: 'sha256:ab', added: ['10.0.0.1'] } },
      ],
      _stamp: '2026-11-22T00:11:30.484188',
    },
    tag: 'salt/run/20261122001130211201/new',
  } as BusEvent,
  published: {
    data: { cluster: 'prod', generation: 3, target: 'm1', digest: 'sha256:ab', added: ['10.0.0.1'], _stamp: '2026-11-22T00:11:30.489804' },
    tag: 'kube-salt-bridge/cluster/prod/nodes',
  } as BusEvent,
  runRetTrue: {
    data: {
      fun: 'runner.event.send',
      jid: '20261122001130211201',
      user: 'ksb',
      fun_args: [
        {
          tag: 'kube-salt-bridge/cluster/prod/nodes',
          data: { cluster: 'prod', generation: 3, target: 'm1', digest: 'sha256:ab', added: ['10.0.0.1'], _stamp: '2026-11-22T00:11:30.489804' },
        },
      ],
      _stamp: '2026-11-22T00:11:30.502430',
      return: true,
      success: true,
    },
    tag: 'salt/run/20261122001130211201/ret',
  } as BusEvent,
  jidOnly: { data: { minions: ['m1'], _stamp: '2026-11-22T00:11:30.572885' }, tag: '20261122001130569537' } as BusEvent,
  applyNewFromReactor: {
    data: {
      jid: '20261122001130569537',
      tgt_type: 'compound',
      tgt: 'm1',
      user: 'root',
      fun: 'kube_allowlist.apply',
      arg: [
        {
          __kwarg__: true,
          payload: { _stamp: '2026-11-22T00:11:30.489804', added: ['10.0.0.1'], cluster: 'prod', digest: 'sha256:ab', generation: 3, target: 'm1' },
        },
      ],
      minions: ['m1'],
      missing: [],
      _stamp: '2026-11-22T00:11:30.574460',
    },
    tag: 'salt/job/20261122001130569537/new',
  } as BusEvent,
  applyRetOk: {
    data: {
      cmd: '_return',
      id: 'm1',
      success: true,
      return: {
        cluster: 'prod',
        generation: 3,
        digest: 'sha256:ab',
        changed: true,
        applied: true,
        reason: 'applied',
        backend: 'ipset',
        added: ['10.0.0.1'],
        removed: [],
      },
      retcode: 0,
      jid: '20261122001130569537',
      fun: 'kube_allowlist.apply',
      fun_args: [
        {
          __kwarg__: true,
          payload: { _stamp: '2026-11-22T00:11:30.489804', added: ['10.0.0.1'], cluster: 'prod', digest: 'sha256:ab', generation: 3, target: 'm1' },
        },
      ],
      user: 'root',
      _stamp: '2026-11-22T00:11:30.656915',
      ts: 1795306290,
    },
    tag: 'salt/job/20261122001130569537/ret/m1',
  } as BusEvent,
  applyRetRefused: {
    data: {
      cmd: '_return',
      id: 'm1',
      success: false,
      return: {
        cluster: 'prod',
        generation: 4,
        digest: null,
        changed: false,
        applied: false,
        reason: 'bad signature',
        backend: 'none',
        added: [],
        removed: [],
      },
      retcode: 1,
      jid: '20261122001130840578',
      fun: 'kube_allowlist.apply',
      fun_args: [{ __kwarg__: true, payload: { _stamp: '2026-11-22T00:11:30.820839', cluster: 'prod', fail: true, generation: 4, target: 'm1' } }],
      user: 'root',
      _stamp: '2026-11-22T00:11:30.926404',
      ts: 1795306290,
    },
    tag: 'salt/job/20261122001130840578/ret/m1',
  } as BusEvent,
  runRetBadArgs: {
    data: {
      fun: 'runner.event.send',
      jid: '20261122001131520759',
      user: 'ksb',
      fun_args: ['other/tag', { tag: 'kube-salt-bridge/cluster/a/nodes' }],
      _stamp: '2026-11-22T00:11:31.727965',
      return: '\nPassed invalid arguments: send() got multiple values for ar...(truncated)...Exception: boom\n',
      success: true,
    },
    tag: 'salt/run/20261122001131520759/ret',
  } as BusEvent,
  minionStartLegacy: {
    data: {
      id: 'm1',
      cmd: '_minion_event',
      pretag: null,
      data: 'Minion m1 started at Sun Nov 22 00:12:29 2026',
      tag: 'minion_start',
      ts: 1795306349,
      _stamp: '2026-11-22T00:12:29.714763',
    },
    tag: 'minion_start',
  } as BusEvent,
  minionStart: {
    data: {
      id: 'm1',
      cmd: '_minion_event',
      pretag: null,
      data: 'Minion m1 started at Sun Nov 22 00:12:29 2026',
      tag: 'salt/minion/m1/start',
      ts: 1795306349,
      _stamp: '2026-11-22T00:12:29.722409',
    },
    tag: 'salt/minion/m1/start',
  } as BusEvent,
  otherNew: {
    data: {
      jid: '20261122001552706196',
      tgt_type: 'glob',
      tgt: 'm1',
      user: 'root',
      fun: 'kube_allowlist.nope',
      arg: [],
      minions: ['m1'],
      missing: [],
      _stamp: '2026-11-22T00:15:52.709402',
    },
    tag: 'salt/job/20261122001552706196/new',
  } as BusEvent,
  otherRetMissingFunction: {
    data: {
      cmd: '_return',
      id: 'm1',
      success: false,
      return: "'kube_allowlist.nope' is not available.",
      retcode: 1,
      out: 'nested',
      jid: '20261122001552706196',
      fun: 'kube_allowlist.nope',
      fun_args: [],
      user: 'root',
      _stamp: '2026-11-22T00:15:53.459001',
      ts: 1795306553,
    },
    tag: 'salt/job/20261122001552706196/ret/m1',
  } as BusEvent,
  boomNew: {
    data: {
      jid: '20261122001553880079',
      tgt_type: 'glob',
      tgt: 'm1',
      user: 'root',
      fun: 'kube_allowlist.boom',
      arg: [],
      minions: ['m1'],
      missing: [],
      _stamp: '2026-11-22T00:15:53.885721',
    },
    tag: 'salt/job/20261122001553880079/new',
  } as BusEvent,
  boomRet: {
    data: {
      cmd: '_return',
      id: 'm1',
      success: false,
      return: 'The minion function caused an exception: Traceback (most rec...(truncated)...Exception: boom\n',
      out: 'nested',
      retcode: 1,
      jid: '20261122001553880079',
      fun: 'kube_allowlist.boom',
      fun_args: [],
      user: 'root',
      _stamp: '2026-11-22T00:15:53.976896',
      ts: 1795306553,
    },
    tag: 'salt/job/20261122001553880079/ret/m1',
  } as BusEvent,
  applyNewWithMissing: {
    data: {
      jid: '20261122001554357139',
      tgt_type: 'list',
      tgt: ['m1', 'ghost'],
      user: 'root',
      fun: 'kube_allowlist.apply',
      arg: [{ __kwarg__: true, payload: { cluster: 'prod', generation: 7 } }],
      minions: ['m1'],
      missing: ['ghost'],
      _stamp: '2026-11-22T00:15:54.359921',
    },
    tag: 'salt/job/20261122001554357139/new',
  } as BusEvent,
  // What `salt-call event.send salt/job/<jid>/ret/m2 '{"fun": ...}'` on minion m1 puts on the bus:
  // the master fires the whole load, marked, with the sender's id; the minion's data is nested.
  forwardedRet: {
    data: {
      id: 'm1',
      cmd: '_minion_event',
      pretag: null,
      data: {
        fun: 'kube_allowlist.apply',
        id: 'm2',
        jid: '20261122001130569537',
        retcode: 0,
        success: true,
        return: { applied: true, changed: true, generation: 1000000000000000 },
      },
      tag: 'salt/job/20261122001130569537/ret/m2',
      _stamp: '2026-11-22T00:20:01.000000',
    },
    tag: 'salt/job/20261122001130569537/ret/m2',
  } as BusEvent,
  // The same data sent with preload={"events": [...]} (the batch form): fired unmarked, as the minion wrote it.
  batchRetForOther: {
    data: {
      cmd: '_return',
      fun: 'kube_allowlist.apply',
      id: 'm2',
      jid: '20261122001130569537',
      retcode: 0,
      success: true,
      return: { applied: true, changed: true, generation: 1000000000000000 },
      _stamp: '2026-11-22T00:20:02.000000',
    },
    tag: 'salt/job/20261122001130569537/ret/m2',
  } as BusEvent,
};

/** The raw SSE text salt-api sent first (retry line, then tag:/data: pairs). */
export const rawSse =
  'retry: 400\ntag: salt/run/20261122001130211201/new\ndata: {"data": {"fun": "runner.event.send", "jid": "20261122001130211201", "user": "ksb", "fun_args": [{"tag": "kube-salt-bridge/cluster/prod/nodes", "data": {"cluster": "prod", "generation": 3, "target": "m1", "digest": "sha256:ab", "added": ["10.0.0.1"]}}], "_stamp": "2026-11-22T00:11:30.484188"}, "tag": "salt/run/20261122001130211201/new"}\n\ntag: kube-salt-bridge/cluster/prod/nodes\ndata: {"data": {"cluster": "prod", "generation": 3, "target": "m1", "digest": "sha256:ab", "added": ["10.0.0.1"], "_stamp": "2026-11-22T00:11:30.489804"}, "tag": "kube-salt-bridge/cluster/prod/nodes"}\n\ntag: salt/run/20261122001130211201/ret\ndata: {"data": {"fun": "runner.event.send", "jid": "20261122001130211201", "user": "ksb", "fun_args": [{"tag": "kube-salt-bridge/cluster/prod/nodes", "data": {"cluster": "prod", "generation": 3, "target": "m1", "digest": "sha256:ab", "added": ["10.0.0.1"], "_stamp": "2026-11-22T00:11:30.489804"}}], "_stamp": "2026-11-22T00:11:30.502430", "return": true, "success": true}, "tag": "salt/run/20261122001130211201/ret"}\n\n';
