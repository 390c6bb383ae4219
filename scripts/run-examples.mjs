// Runs every example in examples/ against the built package (as a user would import it) and
// fails if one exits non-zero or runs too long. CI calls it after the tests.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../examples/', import.meta.url).pathname;
const only = process.argv.slice(2);
const examples = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs') && (only.length === 0 || only.includes(f)))
  .sort();
const TIMEOUT_MS = 120_000;
let failed = 0;
for (const file of examples) {
  const started = performance.now();
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [join(dir, file)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      if (status !== 0) console.log(output.split('\n').slice(-40).join('\n'));
      resolve(signal ? `killed (${signal})` : status);
    });
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${code === 0 ? 'ok  ' : 'FAIL'} examples/${file} (${seconds} s)${code === 0 ? '' : ` exit ${code}`}`);
  if (code !== 0) failed++;
}
console.log(`${examples.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
