import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, KsbError } from '../../src/errors.ts';

describe('KsbError', () => {
  it('carries a stable code, a message, retryable and cause', () => {
    const cause = new Error('ECONNRESET');
    const e = new KsbError('KSB_TEST', 'boom', { cause, retryable: true });
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'KsbError');
    assert.equal(e.code, 'KSB_TEST');
    assert.equal(e.message, 'boom');
    assert.equal(e.retryable, true);
    assert.equal(e.cause, cause);
    assert.ok(e.stack?.includes('boom'));
  });

  it('defaults to not retryable and no cause', () => {
    const e = new KsbError('KSB_TEST', 'x');
    assert.equal(e.retryable, false);
    assert.equal('cause' in e, false);
  });

  it('subclasses get their own name', () => {
    class KsbTestError extends KsbError {}
    assert.equal(new KsbTestError('KSB_T', 'm').name, 'KsbTestError');
  });
});

describe('ConfigError', () => {
  it('names the field first, code KSB_CONFIG, fatal', () => {
    const e = new ConfigError('clusters[1].kubeconfig', 'file not found: /x');
    assert.ok(e instanceof KsbError);
    assert.equal(e.name, 'ConfigError');
    assert.equal(e.code, 'KSB_CONFIG');
    assert.equal(e.field, 'clusters[1].kubeconfig');
    assert.equal(e.message, 'clusters[1].kubeconfig: file not found: /x');
    assert.equal(e.retryable, false);
  });
});
