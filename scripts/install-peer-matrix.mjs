// Installs the other peer versions the tests run the examples against: every other minor of
// @grpc/grpc-js's supported range, and undici 8 (on Node >= 22.19, which undici 8 needs). Each goes
// into .tmp/<group>/<name> once and is kept between runs. `npm test` calls this before vitest, so
// no test installs anything (an install inside a test blocks its worker for up to minutes).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerMatrix } from '../test/support/peer-matrix.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
let failed = 0;
for (const entry of peerMatrix(process.versions.node)) {
  const dir = join(root, entry.dir);
  if (existsSync(join(dir, 'node_modules', ...entry.pkg.split('/'), 'package.json'))) continue;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `{ "name": "${entry.group}-${entry.name}", "private": true }\n`);
  const started = Date.now();
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--silent', entry.spec], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.status === 0) {
    console.log(`installed ${entry.spec} into ${entry.dir} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } else {
    failed++;
    console.error(
      `npm install ${entry.spec} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}${result.stderr}`,
    );
  }
}
process.exit(failed === 0 ? 0 : 1);
