// Makes sure the tools the integration tests use are on the machine: Knot DNS (knotd, knotc) for
// a real DNS server, Unbound for a real caching resolver in front of it, openssl for a test
// CA, and tmux for a real terminal to check the CLI's live view in. Installs what is missing
// with apt-get when run as root (CI and fresh machines); otherwise says what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const tools = [
  { binary: 'knotd', paths: ['/usr/sbin/knotd', '/usr/local/sbin/knotd'], probe: ['version'], packages: ['knot', 'knot-dnsutils'] },
  // `unbound` with no option would start a resolver on port 53: only ever ask it for its version.
  { binary: 'unbound', paths: ['/usr/sbin/unbound', '/usr/local/sbin/unbound'], probe: ['-V'], packages: ['unbound'] },
  { binary: 'openssl', paths: ['/usr/bin/openssl', '/usr/local/bin/openssl'], probe: ['version'], packages: ['openssl'] },
  { binary: 'tmux', paths: ['/usr/bin/tmux', '/usr/local/bin/tmux'], probe: ['-V'], packages: ['tmux'] },
];

const present = (tool) => tool.paths.some((path) => existsSync(path)) || spawnSync(tool.binary, tool.probe).status === 0;
const missing = tools.filter((tool) => !present(tool));
if (missing.length === 0) process.exit(0);

const packages = missing.flatMap((tool) => tool.packages);
if (process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
  console.log(`Installing test tools with apt-get: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  if (packages.includes('unbound')) stopPackagedUnbound();
  process.exit(0);
}
console.error(
  `The integration tests need ${missing.map((t) => t.binary).join(' and ')}: install ${packages.join(' ')} (e.g. sudo apt-get install ${packages.join(' ')}).`,
);
process.exit(1);

/**
 * The tests start their own Unbound on a free port; the package's system resolver is not wanted.
 * Its postinst starts it where an init system runs it (systemd: unbound.service on port 53, and
 * unbound-resolvconf.service, which points /etc/resolv.conf at it when resolvconf is installed).
 * In containers without one (policy-rc.d denies, or no runlevel) nothing starts. Whatever this
 * installation started is stopped and disabled here.
 */
function stopPackagedUnbound() {
  const quiet = { stdio: 'ignore' };
  if (existsSync('/run/systemd/system')) {
    spawnSync('systemctl', ['disable', '--now', 'unbound.service', 'unbound-resolvconf.service'], quiet);
    console.log('Stopped and disabled the unbound system service the package started (the tests run their own).');
    return;
  }
  const pid = readPid('/run/unbound.pid');
  if (pid !== undefined && existsSync(`/proc/${pid}`)) {
    spawnSync('invoke-rc.d', ['unbound', 'stop'], quiet);
    spawnSync('update-rc.d', ['unbound', 'disable'], quiet);
    console.log('Stopped and disabled the unbound init script the package started (the tests run their own).');
  }
}

function readPid(path) {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
