// Makes sure the tools the integration tests use are on the machine: Knot DNS (knotd, knotc) for
// a real DNS server and openssl for a test CA. Installs what is missing with apt-get when run as
// root (CI and fresh machines); otherwise says what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const tools = [
  { binary: 'knotd', paths: ['/usr/sbin/knotd', '/usr/local/sbin/knotd'], packages: ['knot', 'knot-dnsutils'] },
  { binary: 'openssl', paths: ['/usr/bin/openssl', '/usr/local/bin/openssl'], packages: ['openssl'] },
];

const present = (tool) => tool.paths.some((path) => existsSync(path)) || spawnSync(tool.binary, ['version']).status === 0;
const missing = tools.filter((tool) => !present(tool));
if (missing.length === 0) process.exit(0);

const packages = missing.flatMap((tool) => tool.packages);
if (process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
  console.log(`Installing test tools with apt-get: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  process.exit(0);
}
console.error(`The integration tests need ${missing.map((t) => t.binary).join(' and ')}: install ${packages.join(' ')} (e.g. sudo apt-get install ${packages.join(' ')}).`);
process.exit(1);
