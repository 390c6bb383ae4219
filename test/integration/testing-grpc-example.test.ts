import { join } from 'node:path';
import { expect, it } from 'vitest';
import { root, runExample } from '../support/examples.js';

/**
 * Runs examples/testing-grpc.mjs as a user would, against this checkout's sources: the kit's gRPC
 * pods through NOT_SERVING, a crash, a restart, scaling and UNAVAILABLE, with headless-lb's
 * channel as the client under test; it must exit 0 by itself.
 */
it('examples/testing-grpc.mjs exits 0 by itself within 20 s', async () => {
  const { code, output } = await runExample('testing-grpc.mjs', join(root, '.tmp', 'examples-testing-grpc'));
  expect(output).not.toMatch(/FAIL/);
  expect(code, output).toBe(0);
  expect(output).toMatch(/ok {3}no call failed/);
}, 30_000);
