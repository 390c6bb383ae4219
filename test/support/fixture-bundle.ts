import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles `test/fixtures/<name>.ts` into one ES module at `outfile`, for tests that watch a child
 * process (exit code, handles left). `external` packages stay imports, resolved from `outfile`.
 */
export async function bundleFixture(name: string, outfile: string, external: readonly string[] = []): Promise<void> {
  await build({
    entryPoints: [join(import.meta.dirname, '../fixtures', `${name}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
    external: [...external],
    // Bundled CommonJS dependencies call require(), which an ES module lacks.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
}
