import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RequestBody } from '../../../src/http/body.js';

async function drain(body: unknown): Promise<string> {
  let out = '';
  for await (const chunk of body as AsyncIterable<Uint8Array | string>)
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  return out;
}

describe('RequestBody', () => {
  it('treats values as always replayable', () => {
    for (const value of [undefined, null, 'text', Buffer.from('b'), new Uint8Array([1]), new ArrayBuffer(2), new Blob(['x'])]) {
      const body = RequestBody.from(value);
      expect(body.isValue).toBe(true);
      expect(body.forAttempt()).toBe(value ?? null);
      expect(body.replayable).toBe(true);
      expect(body.forAttempt()).toBe(value ?? null);
      expect(body.replayable).toBe(true);
    }
  });

  it('hands an iterable to a second attempt only if the first never read it', async () => {
    let created = 0;
    async function* source() {
      created++;
      yield Buffer.from('a');
      yield Buffer.from('b');
    }
    const body = RequestBody.from(source());
    expect(body.isValue).toBe(false);
    const first = body.forAttempt() as AsyncGenerator;
    // undici gave up before writing: the wrapper is closed without being read
    await first.return(undefined);
    expect(body.replayable).toBe(true);
    expect(created).toBe(0);
    const second = body.forAttempt();
    expect(await drain(second)).toBe('ab');
    expect(body.replayable).toBe(false);
  });

  it('wraps sync iterables and web streams the same way', async () => {
    const sync = RequestBody.from([Buffer.from('x'), Buffer.from('y')]);
    expect(await drain(sync.forAttempt())).toBe('xy');
    expect(sync.replayable).toBe(false);
    const web = RequestBody.from(new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('w')), c.close()) }));
    expect(await drain(web.forAttempt())).toBe('w');
    expect(web.replayable).toBe(false);
  });

  it('passes a Readable through and judges it by whether it was read', async () => {
    const stream = Readable.from(['p', 'q']);
    const body = RequestBody.from(stream);
    expect(body.forAttempt()).toBe(stream);
    expect(body.replayable).toBe(true);
    expect(await drain(stream)).toBe('pq');
    expect(body.replayable).toBe(false);
    const destroyed = Readable.from(['z']);
    destroyed.destroy();
    expect(RequestBody.from(destroyed).replayable).toBe(false);
  });
});
