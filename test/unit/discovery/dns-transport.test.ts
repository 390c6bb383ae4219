import packet from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeMessage } from '../../../src/discovery/dns-transport.js';

const QUESTION = { id: 0x1234, name: 'web.default.svc.cluster.local', type: 'A' as const };

const genuine = (overrides: Partial<packet.Packet> = {}): Buffer =>
  packet.encode({
    type: 'response',
    id: QUESTION.id,
    flags: packet.AUTHORITATIVE_ANSWER,
    questions: [{ name: QUESTION.name, type: 'A', class: 'IN' }],
    answers: [{ type: 'A', name: QUESTION.name, ttl: 5, data: '127.0.0.11' }],
    ...overrides,
  });

describe('judgeMessage', () => {
  it('takes the genuine answer, whatever the case of the echoed name', () => {
    expect('answer' in judgeMessage(genuine(), QUESTION)).toBe(true);
    expect(
      'answer' in judgeMessage(genuine({ questions: [{ name: 'WEB.default.svc.Cluster.Local.', type: 'A', class: 'IN' }] }), QUESTION),
    ).toBe(true);
  });

  it.each([
    ['undecodable', Buffer.from('not DNS')],
    ['undecodable', genuine().subarray(0, genuine().length - 1)], // a record cut short
    ['not-a-response', packet.encode({ type: 'query', id: QUESTION.id, questions: [{ name: QUESTION.name, type: 'A' }] })],
    ['wrong-id', genuine({ id: QUESTION.id + 1 })],
    ['no-question', genuine({ questions: [] })],
    ['wrong-question', genuine({ questions: [{ name: 'evil.example', type: 'A', class: 'IN' }] })],
    ['wrong-question', genuine({ questions: [{ name: QUESTION.name, type: 'AAAA', class: 'IN' }] })],
    ['wrong-question', genuine({ questions: [{ name: QUESTION.name, type: 'A', class: 'CH' }] })],
    [
      'wrong-question',
      genuine({
        questions: [
          { name: QUESTION.name, type: 'A', class: 'IN' },
          { name: 'evil.example', type: 'A', class: 'IN' },
        ],
      }),
    ],
  ])('drops a message: %s', (reason, message) => {
    expect(judgeMessage(message, QUESTION)).toEqual({ dropped: reason });
  });

  it('drops compression pointer loops without hanging', () => {
    const message = Buffer.from(genuine());
    message.writeUInt16BE(0xc00c, 12); // the question's name points at itself
    expect(judgeMessage(message, QUESTION)).toEqual({ dropped: 'undecodable' });
    const answerOwner = 12 + QUESTION.name.length + 2 + 4;
    const forward = Buffer.from(genuine());
    forward.writeUInt16BE(0xc000 | answerOwner, 12); // question → answer owner (ahead)
    forward.writeUInt16BE(0xc00c, answerOwner); // answer owner → question
    expect(judgeMessage(forward, QUESTION)).toEqual({ dropped: 'undecodable' });
  });

  it('never throws, and takes a message only when it echoes our ID and question (random bytes and mutations)', () => {
    const base = genuine();
    const mutated = fc
      .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([flips, cut]) => {
        const bytes = Buffer.from(base);
        for (const [at, xor] of flips) bytes[at % bytes.length] = bytes[at % bytes.length]! ^ xor;
        return bytes.subarray(0, bytes.length - (cut % 8));
      });
    const anyBytes = fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes));
    fc.assert(
      fc.property(fc.oneof(mutated, anyBytes), (message) => {
        const judged = judgeMessage(message, QUESTION);
        if ('answer' in judged) {
          expect(judged.answer.id).toBe(QUESTION.id);
          expect(judged.answer.flag_qr).toBe(true);
          expect(judged.answer.questions).toHaveLength(1);
          expect(judged.answer.questions![0]!.name.toLowerCase().replace(/\.$/, '')).toBe(QUESTION.name);
          expect(judged.answer.questions![0]!.type).toBe('A');
        }
      }),
      { numRuns: 3000 },
    );
  });
});
