import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { loadEchoService, startGrpcPod, type EchoClient, type GrpcPod, type GrpcPodBehaviour } from '../../src/testing/index.js';
import { unary } from '../support/grpc-unary.js';

/**
 * Random behaviours and pod options, mostly valid, sometimes hostile: each is refused with an
 * InvalidOptionError naming the field, or accepted, and then a call gets exactly what the
 * behaviour says (an answer, the status, DEADLINE_EXCEEDED for a hang, UNAVAILABLE for a reset).
 */

const hostile = fc.constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 31, 1.5, '14', '', null, {}, [], 1n, 503);
const mostly = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 6, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostile });

const behaviours = fc
  .tuple(
    fc.record(
      {
        delayMs: mostly(fc.integer({ min: 0, max: 30 })),
        hang: mostly(fc.boolean()),
        reset: mostly(fc.boolean()),
        status: mostly(fc.integer({ min: 1, max: 16 })),
        details: mostly(fc.string({ maxLength: 20 })),
        health: mostly(fc.constantFrom('SERVING', 'NOT_SERVING')),
        trailers: mostly(
          fc.dictionary(
            fc.constantFrom('x-a', 'grpc-retry-pushback-ms', 'x-b', 'Bad Key', 'grpc-status', 'x-bin'),
            fc.oneof(
              fc.stringMatching(/^[0-9a-z-]{1,6}$/),
              fc.array(fc.stringMatching(/^[0-9a-z]{1,4}$/), { minLength: 1, maxLength: 3 }),
              fc.constantFrom<unknown>(' 5', '', 'é', 7, [null]),
            ),
            { maxKeys: 2 },
          ),
        ),
      },
      { requiredKeys: [] },
    ),
    fc.integer({ min: 0, max: 14 }),
  )
  .map(([behaviour, dice]) => (dice === 0 ? { ...behaviour, colour: 'red' } : behaviour));

const FIELDS = ['behaviour', 'behaviour.delayMs', 'behaviour.hang', 'behaviour.reset', 'behaviour.status'];
const FIELDS_ALL = [...FIELDS, 'behaviour.details', 'behaviour.health', 'behaviour.trailers', 'behaviour.colour'];

let pod: GrpcPod;
let client: EchoClient;

beforeAll(async () => {
  const Echo = await loadEchoService();
  pod = await startGrpcPod({ name: 'prop-0', port: 0 });
  client = new Echo(pod.target, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await pod?.crash();
});

it('setBehaviour: refused by name, or a call gets what the behaviour says', async () => {
  await fc.assert(
    fc.asyncProperty(behaviours, async (behaviour) => {
      pod.setBehaviour({});
      try {
        pod.setBehaviour(behaviour as GrpcPodBehaviour);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidOptionError);
        const field = (error as InvalidOptionError).field;
        expect(FIELDS_ALL.includes(field) || field.startsWith('behaviour.trailers.'), field).toBe(true);
        expect(pod.behaviour).toEqual({});
        return;
      }
      const b = pod.behaviour;
      const result = await unary(client, { text: 't' }, { deadlineMs: b.hang === true ? 100 : 2000 });
      const expected =
        b.hang === true
          ? grpc.status.DEADLINE_EXCEEDED
          : b.status !== undefined
            ? b.status
            : b.reset === true
              ? grpc.status.UNAVAILABLE
              : grpc.status.OK;
      expect(result.ok ? grpc.status.OK : result.error.code).toBe(expected);
      if (result.ok) expect(result.reply).toMatchObject({ pod: 'prop-0', text: 't' });
      else if (b.status !== undefined && b.hang !== true) {
        if (b.details !== undefined) expect(result.error.details).toBe(b.details);
        for (const [key, values] of Object.entries(b.trailers ?? {}))
          // Several entries of a key reach a grpc-js client as one value, joined by ', '.
          expect(result.error.metadata.get(key)).toEqual([typeof values === 'string' ? values : values.join(', ')]);
      }
    }),
    { numRuns: 60 },
  );
  pod.setBehaviour({});
  expect((await unary(client, {})).ok).toBe(true);
});

it('startGrpcPod: hostile options are refused by name, before anything listens', async () => {
  const options = fc.record(
    {
      name: mostly(fc.constantFrom('a', 'echo-0')),
      port: mostly(fc.constant(0)),
      address: fc.oneof(hostile, fc.constantFrom('10.0.0.1', '::1', 'localhost', '127.0.0.256')),
      behaviour: mostly(fc.constant({})),
      tls: mostly(fc.constant({ key: 7, cert: 'x' })),
    },
    { requiredKeys: ['address'] },
  );
  await fc.assert(
    fc.asyncProperty(options, async (input) => {
      // Every address drawn here is refused, so nothing valid is ever started.
      const error = await startGrpcPod(input as never).then(
        (started) => started.crash().then(() => new Error(`started ${JSON.stringify(input)}`)),
        (refused: unknown) => refused,
      );
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(['options', 'name', 'port', 'address', 'behaviour', 'tls', 'tls.key', ...FIELDS_ALL]).toContain(
        (error as InvalidOptionError).field,
      );
    }),
    { numRuns: 100 },
  );
});
