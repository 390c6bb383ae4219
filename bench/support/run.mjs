#!/usr/bin/env node
// Runs the TypeScript benchmarks in bench/ without a TS loader: bundles each entry with esbuild
// (already installed with tsup) into .tmp/bench/ and runs it with node from the repository root.
// An entry is bench/<name>.ts, or bench/<name>/main.ts for a benchmark of several files.
//
//   node bench/support/run.mjs                  # every bench/*.ts
//   node bench/support/run.mjs pickers          # one of them
//   node bench/support/run.mjs shard-key --compare
//   node bench/support/run.mjs pickers --runs 5
//   node bench/support/run.mjs scenarios --runs 3   # bench/scenarios/main.ts (npm run bench:scenarios)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Every bench/*.ts is a benchmark.
const all = readdirSync(join(root, 'bench'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -3))
  .sort();
const args = process.argv.slice(2);
// Benchmark names first, then options passed to each (e.g. `pickers --runs 5`).
const firstFlag = args.findIndex((a) => a.startsWith('-'));
const names = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const selected = names.length > 0 ? names : all;

for (const name of selected) {
  const entry = [join(root, 'bench', `${name}.ts`), join(root, 'bench', name, 'main.ts')].find((file) => existsSync(file));
  if (entry === undefined) {
    const suites = readdirSync(join(root, 'bench'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, 'bench', d.name, 'main.ts')))
      .map((d) => d.name);
    console.error(`No benchmark bench/${name}.ts or bench/${name}/main.ts (have: ${[...all, ...suites].join(', ')})`);
    process.exit(2);
  }
  const outdir = join(root, '.tmp', 'bench');
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, `${name}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  const result = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...flags], {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, HLB_BENCH_ROOT: root },
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
