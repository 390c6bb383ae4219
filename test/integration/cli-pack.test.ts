import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/testing/index.js';
import { startCli } from '../support/cli.js';
import { root } from '../support/examples.js';
import { startKnotCluster, type HttpKnotCluster } from '../support/knot-cluster.js';

/**
 * "Done when" of issue 14: `npx headless-lb resolve` and `watch` work from a clean install of
 * the packed tarball. The package is built (tsup, without the .d.ts files, which `npm run
 * lint:package` checks) into a staging copy, packed with `npm pack`, installed into an empty
 * project in a temporary folder, and run there with npx against real Knot.
 */

const run = promisify(execFile);
let env: HttpKnotCluster;
let web: Service;
let project: string;

beforeAll(async () => {
  env = await startKnotCluster({ ttl: 2 });
  web = await env.cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
  const stage = join(root, '.tmp', `cli-pack-${process.pid}`);
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  await run(
    process.execPath,
    [join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--out-dir', join(stage, 'dist'), '--no-dts'],
    { cwd: root },
  );
  for (const file of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE']) await copyFile(join(root, file), join(stage, file));
  await cp(join(root, 'proto'), join(stage, 'proto'), { recursive: true });
  await run('npm', ['pack', '--silent', '--pack-destination', stage], { cwd: stage });
  const tarball = (await readdir(stage)).find((f) => f.endsWith('.tgz'))!;
  project = await mkdtemp(join(tmpdir(), 'hlb-cli-pack-'));
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(stage, tarball)], { cwd: project });
}, 240_000);

afterAll(async () => {
  await env?.close();
  if (project !== undefined) await rm(project, { recursive: true, force: true });
});

const npx = () => ({ cwd: project, command: ['npx', '--no-install', 'headless-lb'], group: true });

describe('the packed tarball', () => {
  it('npx headless-lb resolve', { timeout: 60_000 }, async () => {
    const result = await startCli(
      '',
      ['resolve', web.fqdn, '--port-name', 'http', '--dns-server', env.knot.address, '--search='],
      npx(),
    ).exit(30_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${web.fqdn} (SRV _http._tcp): 3 endpoints`);
    for (const pod of web.pods) expect(result.stdout).toContain(pod.ip);
  });

  it('npx headless-lb watch --json, ended with Ctrl-C', { timeout: 60_000 }, async () => {
    const watch = startCli(
      '',
      [
        'watch',
        web.fqdn,
        '--port-name',
        'http',
        '--dns-server',
        env.knot.address,
        '--search=',
        '--probe',
        'tcp',
        '--interval',
        '200',
        '--json',
      ],
      npx(),
    );
    try {
      const snapshot = await watch.waitForJson((l) => l.type === 'snapshot' && (l.pool as { size: number }).size === 3, 20_000);
      expect((snapshot.endpoints as { pod: string }[]).map((e) => e.pod).sort()).toEqual(['web-0', 'web-1', 'web-2']);
      expect(watch.json().filter((l) => l.type === 'added')).toHaveLength(3);
      // Ctrl-C in a terminal: SIGINT to the whole group (npm exec, its shell, the command).
      watch.signal('SIGINT');
      const result = await watch.exit(10_000);
      // npm exec ends by the signal it got; the command itself closes and exits 0 (cli-watch.test.ts).
      expect(result.signal === 'SIGINT' || result.code === 0).toBe(true);
      expect(() => process.kill(-watch.child.pid!, 0)).toThrow(/ESRCH/); // nothing of the group is left
    } finally {
      watch.signal('SIGKILL');
    }
  });

  it('headless-lb/testing without the gRPC peers: HTTP pods work, gRPC pods name what is missing', { timeout: 60_000 }, async () => {
    // The install added no optional peer: this is an HTTP-only user.
    const script = `
      const { startCluster, protoFiles } = require('headless-lb/testing');
      const fs = require('node:fs');
      (async () => {
        const cluster = await startCluster();
        const web = await cluster.createService({ name: 'web' });
        const res = await fetch(web.pods[0].url);
        const grpc = await cluster.createService({ name: 'echo', appProtocol: 'grpc' }).then(() => 'started', (e) => e.message);
        const files = protoFiles();
        await cluster.close();
        console.log(JSON.stringify({ status: res.status, grpc, protos: [files.echo, files.health].map((f) => fs.existsSync(f)) }));
      })();`;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({
      status: 200,
      grpc: expect.stringContaining('gRPC pods need @grpc/grpc-js'),
      protos: [true, true],
    });
  });
});
