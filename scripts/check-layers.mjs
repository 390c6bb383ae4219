// Checks src/'s imports against the layering (each layer imports only itself and the layers below)
// and for cycles. Exits 1 with each offending import named. `npm run lint` runs it.
//
//   base        errors, clock, shared types and small utilities (BASE_FILES)
//   discovery   DNS and static sources         (must not import pool)
//   pool        endpoints and their statistics (must not import discovery)
//   pickers     choosing an endpoint
//   retry       the call path: attempts, retries, hedging, budgets
//   balancer    options, config, wiring, the public core entry
//   adapters    http, grpc, otel               (must not import each other)
//   cli         the headless-lb command
//   testing     the test kit: base and public entries only
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** The base layer's files at the top of src/: shared types and small utilities every layer may use. */
const BASE_FILES = new Set([
  'errors.ts',
  'clock.ts',
  'sliding-window.ts',
  'target.ts',
  'failure-kind.ts',
  'option-checks.ts',
  'timer-delay.ts',
  'port.ts',
]);

const LAYERS = [
  { name: 'base', rank: 0, match: (f) => BASE_FILES.has(f) || f.startsWith('hashing/') },
  { name: 'discovery', rank: 1, match: (f) => f.startsWith('discovery/') },
  { name: 'pool', rank: 1, match: (f) => f.startsWith('pool/') },
  { name: 'pickers', rank: 2, match: (f) => f.startsWith('pickers/') },
  { name: 'retry', rank: 3, match: (f) => f.startsWith('retry/') },
  { name: 'balancer', rank: 4, match: (f) => f.startsWith('balancer/') || !f.includes('/') },
  { name: 'http', rank: 5, match: (f) => f.startsWith('http/') },
  { name: 'grpc', rank: 5, match: (f) => f.startsWith('grpc/') },
  { name: 'otel', rank: 5, match: (f) => f.startsWith('otel/') },
  { name: 'cli', rank: 6, match: (f) => f.startsWith('cli/') },
  { name: 'testing', rank: 4, match: (f) => f.startsWith('testing/') },
];
/** Public entries the test kit and the CLI may import, besides the base layer. */
const PUBLIC_ENTRIES = new Set(['index.ts', 'http/index.ts', 'grpc/index.ts', 'otel/index.ts', 'testing/index.ts']);

const layerOf = (file) => LAYERS.find((layer) => layer.match(file));

function* files(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (path.endsWith('.ts')) yield relative(src, path).split('\\').join('/');
  }
}

/** Relative imports and re-exports of a file, as paths under src/. */
function importsOf(file) {
  const text = readFileSync(join(src, file), 'utf8');
  const found = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    found.push(
      relative(src, resolve(dirname(join(src, file)), match[1]))
        .split('\\')
        .join('/')
        .replace(/\.js$/, '.ts'),
    );
  }
  return found;
}

const problems = [];
const graph = new Map();
for (const file of files(src)) {
  const from = layerOf(file);
  const targets = importsOf(file);
  graph.set(file, targets);
  for (const target of targets) {
    const to = layerOf(target);
    if (from === undefined || to === undefined) {
      problems.push(`${file} → ${target}: no layer for ${from === undefined ? file : target}`);
      continue;
    }
    if (from === to) continue;
    const ok =
      from.name === 'testing' || from.name === 'cli'
        ? to.name === 'base' || PUBLIC_ENTRIES.has(target)
        : to.name !== 'testing' && to.name !== 'cli' && to.rank < from.rank;
    if (!ok)
      problems.push(
        `${file} (${from.name}) → ${target} (${to.name}): runs ${to.rank >= from.rank ? 'sideways or up' : 'to a private module'}`,
      );
  }
}

// Cycles: a depth-first walk; a back edge to a file still on the stack closes one.
const state = new Map();
const stack = [];
function visit(file) {
  state.set(file, 'open');
  stack.push(file);
  for (const next of graph.get(file) ?? []) {
    if (!graph.has(next)) continue;
    if (state.get(next) === 'open') problems.push(`cycle: ${[...stack.slice(stack.indexOf(next)), next].join(' → ')}`);
    else if (!state.has(next)) visit(next);
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  console.error(`check-layers: ${problems.length} import(s) break the layering:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-layers: ${graph.size} modules, no back-edge, no cycle`);
