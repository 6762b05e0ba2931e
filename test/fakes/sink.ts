// An in-memory EventSink that records what was fired and can be told to fail.
import type { AllowListPayload, EventSink } from '../../src/seams.ts';
import { KsbError } from '../../src/errors.ts';

export class FakeSink implements EventSink {
  readonly fired: Array<{ tag: string; data: AllowListPayload }> = [];
  failNext = 0;

  fire(tag: string, data: AllowListPayload): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new KsbError('KSB_SALT_UNREACHABLE', 'salt-api unreachable (fake)', { retryable: true }));
    }
    this.fired.push({ tag, data: structuredClone(data) });
    return Promise.resolve();
  }
}
