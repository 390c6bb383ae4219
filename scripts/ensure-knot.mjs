// Makes sure a Knot DNS server is available for the integration tests; installs it with
// apt-get when missing and running as root (CI and fresh machines), else explains what to do.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const candidates = ['/usr/sbin/knotd', '/usr/local/sbin/knotd'];
if (candidates.some((path) => existsSync(path)) || spawnSync('knotd', ['--version']).status === 0) process.exit(0);

if (process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
  console.log('Knot DNS (knotd) is missing: installing it with apt-get for the integration tests...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'knot', 'knot-dnsutils'], { stdio: 'inherit', env });
  process.exit(0);
}
console.error('The integration tests need Knot DNS (knotd). Install it, e.g. `sudo apt-get install knot knot-dnsutils`.');
process.exit(1);
