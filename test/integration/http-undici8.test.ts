import { describe, expect, it } from 'vitest';
import { installedPackage, runExample } from '../support/examples.js';
import { undici8Runs as undici8RunsOn } from '../support/peer-matrix.mjs';

/**
 * examples/http-fetch.mjs with undici 8 installed as the peer: undici 8's pools take controller
 * handlers only, so the dispatcher's attempts use that API there (legacy ones would fail every
 * request with `invalid onRequestStart method`). The example's callers cover both handler APIs:
 * Node's global fetch (its bundled undici) and undici 8's `request`. undici 8 is installed into .tmp/undici-matrix/8 by
 * scripts/install-peer-matrix.mjs before the tests. It needs Node ≥ 22.19: skipped on older Nodes (CI runs it on Node 24).
 */
const undici8Runs = undici8RunsOn(process.versions.node);

describe('examples/http-fetch.mjs on undici 8', () => {
  it.skipIf(!undici8Runs)(
    'exits 0 by itself with no failed request',
    async () => {
      const { dir, version } = await installedPackage('undici-matrix', '8', 'undici');
      expect(version.startsWith('8.')).toBe(true);
      const { code, output } = await runExample('http-fetch.mjs', dir);
      expect(code, `undici ${version}:\n${output}`).toBe(0);
      expect(output).toMatch(/requests: \d+ ok, 0 failed/);
    },
    30_000,
  );
});

describe('examples/http-per-request.mjs on undici 8', () => {
  it.skipIf(!undici8Runs)(
    'honours each per-request option through undici 8 (request, dispatcher.request) and global fetch',
    async () => {
      const { dir, version } = await installedPackage('undici-matrix', '8', 'undici');
      const { code, output } = await runExample('http-per-request.mjs', dir);
      expect(code, `undici ${version}:\n${output}`).toBe(0);
      expect(output).toMatch(/per-request options: all honoured/);
    },
    30_000,
  );
});
