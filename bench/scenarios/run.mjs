#!/usr/bin/env node
// Runs the scenario benchmark (bench/scenarios/main.ts) without a TS loader: bundles it with
// esbuild (installed with tsup) into .tmp/bench/scenarios.mjs and runs it with node from the
// repository root. Options are passed through:
//
//   node bench/scenarios/run.mjs --runs 3          (npm run bench:scenarios -- --runs 3)
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, '.tmp', 'bench');
mkdirSync(outdir, { recursive: true });
const outfile = join(outdir, 'scenarios.mjs');
await build({
  entryPoints: [join(root, 'bench', 'scenarios', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, HLB_BENCH_ROOT: root },
});
process.exit(result.status ?? 1);
