import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/**
 * Runs examples/grpc-shard-keys.mjs as a user would, against this checkout's sources (bundled with
 * `headless-lb`, `headless-lb/grpc` and `headless-lb/testing` pointing at src/, so no build is
 * needed): it must exit 0 by itself within 20 s. It does so with the development grpc-js and with
 * every other minor of the supported peer range (^1.10.0): each minor's latest patch is installed
 * once into .tmp/grpc-js-matrix/<minor> (npm registry, kept between runs) and the bundle is put
 * next to it, so that it imports that grpc-js, client and servers alike. The example covers
 * round-robin spread, shard keys, `withKey`, a scale-up seen through DNS, and a crashed pod whose
 * calls fail over (the never-sent proof rests on grpc-js's channel states).
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OTHER_MINORS = ['1.10', '1.11', '1.12', '1.13'];

/** The directory of an installed grpc-js minor (installed on first use), and its exact version. */
async function install(minor: string): Promise<{ dir: string; version: string }> {
  const dir = join(root, '.tmp', 'grpc-js-matrix', minor);
  const manifest = join(dir, 'node_modules', '@grpc', 'grpc-js', 'package.json');
  if (!existsSync(manifest)) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'package.json'), '{ "name": "grpc-js-matrix", "private": true }\n');
    const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--silent', `@grpc/grpc-js@~${minor}.0`], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) throw new Error(`npm install @grpc/grpc-js@~${minor}.0 failed:\n${result.stdout}${result.stderr}`);
  }
  return { dir, version: (JSON.parse(await readFile(manifest, 'utf8')) as { version: string }).version };
}

/** Bundles the example into `dir` (bare imports such as @grpc/grpc-js stay imports, resolved from `dir` up) and runs it. */
async function runExample(dir: string): Promise<{ code: number | null; output: string }> {
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, 'grpc-shard-keys.mjs');
  await build({
    entryPoints: [join(root, 'examples', 'grpc-shard-keys.mjs')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    alias: {
      'headless-lb/grpc': join(root, 'src', 'grpc', 'index.ts'),
      'headless-lb/testing': join(root, 'src', 'testing', 'index.ts'),
      'headless-lb': join(root, 'src', 'index.ts'),
    },
    logLevel: 'warning',
  });
  await copyFile(join(root, 'examples', 'grpc-shard-keys.proto'), join(dir, 'grpc-shard-keys.proto'));
  const child = spawn(process.execPath, [outfile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  clearTimeout(timer);
  return { code, output };
}

describe('examples/grpc-shard-keys.mjs', () => {
  it('exits 0 by itself within 20 s', async () => {
    const { code, output } = await runExample(join(root, '.tmp', 'examples'));
    expect(output).not.toMatch(/FAIL/);
    expect(code, output).toBe(0);
    expect(output).toMatch(/only the keys that belong to the new pod moved/);
  }, 30_000);

  it.each(OTHER_MINORS)('passes on @grpc/grpc-js %s', async (minor) => {
    const { dir, version } = await install(minor);
    expect(version.startsWith(`${minor}.`)).toBe(true);
    const { code, output } = await runExample(dir);
    expect(output).not.toMatch(/FAIL/);
    expect(code, `grpc-js ${version}:\n${output}`).toBe(0);
  }, 150_000);
});
