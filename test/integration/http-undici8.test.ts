import { describe, expect, it } from 'vitest';
import { installPackage, runExample } from '../support/examples.js';

/**
 * examples/http-fetch.mjs with undici 8 installed as the peer: undici 8's pools take controller
 * handlers only, so the dispatcher's attempts use that API there (legacy ones would fail every
 * request with `invalid onRequestStart method`). The example's callers cover both handler APIs:
 * Node's global fetch (its bundled undici) and undici 8's `request`. undici 8 is installed once into .tmp/undici-matrix/8 (npm registry, kept
 * between runs). It needs Node ≥ 22.19: skipped on older Nodes (CI runs it on Node 24).
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const undici8Runs = major > 22 || (major === 22 && minor >= 19);

describe('examples/http-fetch.mjs on undici 8', () => {
  it.skipIf(!undici8Runs)('exits 0 by itself with no failed request', async () => {
    const { dir, version } = await installPackage('undici-matrix', '8', 'undici', 'undici@8');
    expect(version.startsWith('8.')).toBe(true);
    const { code, output } = await runExample('http-fetch.mjs', dir);
    expect(code, `undici ${version}:\n${output}`).toBe(0);
    expect(output).toMatch(/requests: \d+ ok, 0 failed/);
  }, 150_000);
});
