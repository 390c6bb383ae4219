import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Runs an example as a user would, against this checkout's sources: the example is bundled with
 * `headless-lb`, `headless-lb/http`, `headless-lb/grpc`, `headless-lb/otel` and `headless-lb/testing` pointing at
 * src/ (no build needed) and its other bare imports left as imports, resolved from the directory
 * the bundle is put in. Put it next to a `node_modules` with another version of a peer
 * (`installedPackage`) and it runs against that version, client and servers alike.
 */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The copy of `pkg` that scripts/install-peer-matrix.mjs (run by `npm test`) put into
 * .tmp/<group>/<name>: that directory and the installed version. Installing is not a test's job:
 * an install blocks the test's worker for as long as the registry takes.
 */
export async function installedPackage(group: string, name: string, pkg: string): Promise<{ dir: string; version: string }> {
  const dir = join(root, '.tmp', group, name);
  const manifest = join(dir, 'node_modules', ...pkg.split('/'), 'package.json');
  if (!existsSync(manifest)) {
    throw new Error(`${pkg} is not installed in ${dir}: run \`node scripts/install-peer-matrix.mjs\` (npm test does)`);
  }
  return { dir, version: (JSON.parse(await readFile(manifest, 'utf8')) as { version: string }).version };
}

/** Bundles examples/<example> (and copies `files` from examples/) into `dir`, runs it from the repository root, and returns its exit code and output. */
export async function runExample(
  example: string,
  dir: string,
  options: { files?: readonly string[]; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, basename(example));
  await build({
    entryPoints: [join(root, 'examples', example)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    alias: {
      'headless-lb/http': join(root, 'src', 'http', 'index.ts'),
      'headless-lb/grpc': join(root, 'src', 'grpc', 'index.ts'),
      'headless-lb/otel': join(root, 'src', 'otel', 'index.ts'),
      'headless-lb/testing': join(root, 'src', 'testing', 'index.ts'),
      'headless-lb': join(root, 'src', 'index.ts'),
    },
    logLevel: 'warning',
  });
  for (const file of options.files ?? []) await copyFile(join(root, 'examples', file), join(dir, file));
  const child = spawn(process.execPath, [outfile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  clearTimeout(timer);
  return { code, output };
}
