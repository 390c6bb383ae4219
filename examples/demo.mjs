// A live demo of headless-lb: a headless Service on an embedded, Kubernetes-shaped DNS server
// (TTL 5 s, like CoreDNS) with real HTTP pods on 127.x.y.z loopback addresses. Steady traffic
// flows through a balancer while the Service is scaled up, a pod crashes, a pod restarts with a
// new IP, and the Service is scaled down. The demo ships with the package (src/cli/demo.ts):
// this runs `headless-lb demo`, as `npx headless-lb demo` does. Run: npm run demo
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const manifestPath = createRequire(import.meta.url).resolve('headless-lb/package.json');
const { bin } = JSON.parse(readFileSync(manifestPath, 'utf8'));
const child = spawn(process.execPath, [join(dirname(manifestPath), bin['headless-lb']), 'demo'], { stdio: 'inherit' });
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
