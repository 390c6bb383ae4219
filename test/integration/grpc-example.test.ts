import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedPackage, root, runExample } from '../support/examples.js';
import { GRPC_MINORS } from '../support/peer-matrix.mjs';

/**
 * Runs examples/grpc-shard-keys.mjs as a user would, against this checkout's sources (bundled with
 * `headless-lb`, `headless-lb/grpc` and `headless-lb/testing` pointing at src/, so no build is
 * needed): it must exit 0 by itself within 20 s. It does so with the development grpc-js and with
 * every other minor of the supported peer range (^1.10.0): each minor's latest patch, installed
 * into .tmp/grpc-js-matrix/<minor> by scripts/install-peer-matrix.mjs before the tests and the bundle is put
 * next to it, so that it imports that grpc-js, client and servers alike. The example covers
 * round-robin spread, shard keys, `withKey`, a scale-up seen through DNS, and a crashed pod whose
 * calls fail over (the never-sent proof rests on grpc-js's channel states).
 */
const run = (dir: string) => runExample('grpc-shard-keys.mjs', dir, { files: ['grpc-shard-keys.proto'] });

describe('examples/grpc-shard-keys.mjs', () => {
  it('exits 0 by itself within 20 s', async () => {
    const { code, output } = await run(join(root, '.tmp', 'examples'));
    expect(output).not.toMatch(/FAIL/);
    expect(code, output).toBe(0);
    expect(output).toMatch(/only the keys that belong to the new pod moved/);
  }, 30_000);

  it.each(GRPC_MINORS)(
    'passes on @grpc/grpc-js %s',
    async (minor) => {
      const { dir, version } = await installedPackage('grpc-js-matrix', minor, '@grpc/grpc-js');
      expect(version.startsWith(`${minor}.`)).toBe(true);
      const { code, output } = await run(dir);
      expect(output).not.toMatch(/FAIL/);
      expect(code, `grpc-js ${version}:\n${output}`).toBe(0);
    },
    30_000,
  );
});
