import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedPackage, root, runExample } from '../support/examples.js';
import { GRPC_MINORS } from '../support/peer-matrix.mjs';

/**
 * Runs examples/testing-grpc.mjs as a user would, against this checkout's sources: the kit's gRPC
 * pods through NOT_SERVING, a crash, a restart, scaling and UNAVAILABLE, with headless-lb's
 * channel as the client under test; it must exit 0 by itself. Also against each other grpc-js
 * minor (installed by scripts/install-peer-matrix.mjs), pods and client alike: the pods need
 * grpc-js 1.11 (Server.createConnectionInjector) and say so on 1.10.
 */
const run = (dir: string) => runExample('testing-grpc.mjs', dir);

describe('examples/testing-grpc.mjs', () => {
  it('exits 0 by itself within 20 s', async () => {
    const { code, output } = await run(join(root, '.tmp', 'examples-testing-grpc'));
    expect(output).not.toMatch(/FAIL/);
    expect(code, output).toBe(0);
    expect(output).toMatch(/ok {3}no call failed/);
  }, 30_000);

  it.each(GRPC_MINORS)(
    'on @grpc/grpc-js %s',
    async (minor) => {
      const { dir, version } = await installedPackage('grpc-js-matrix', minor, '@grpc/grpc-js');
      const { code, output } = await run(dir);
      if (minor === '1.10') {
        expect(output).toMatch(/gRPC pods need @grpc\/grpc-js 1\.11 or later/);
        expect(code).not.toBe(0);
      } else {
        expect(output).not.toMatch(/FAIL/);
        expect(code, `grpc-js ${version}:\n${output}`).toBe(0);
      }
    },
    30_000,
  );
});
