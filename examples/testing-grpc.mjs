// Testing a gRPC client against pod churn, without a cluster.
//
// headless-lb/testing runs a Kubernetes-shaped DNS server and a headless Service whose pods are
// real grpc-js servers on 127.x addresses, serving an echo service (each reply names the pod
// that answered) and the standard grpc.health.v1 health service. The client under test is
// headless-lb's gRPC channel; yours would be pointed at `cluster.dnsServer` the same way. The
// pods then misbehave, one fault at a time, while calls run: a pod reports NOT_SERVING, a pod
// crashes, a pod restarts with a new IP, the Service scales up and down, a pod answers
// UNAVAILABLE. The client, told that Echo/Unary is idempotent, loses no call.
//
//   npm run build && node examples/testing-grpc.mjs       (exits 0 on success, in a few seconds)

import * as grpc from '@grpc/grpc-js';
import { createBalancer } from 'headless-lb';
import { createGrpcChannel } from 'headless-lb/grpc';
import { loadEchoService, loadHealthService, startCluster } from 'headless-lb/testing';

const insecure = grpc.credentials.createInsecure();
const Echo = await loadEchoService();
const Health = await loadHealthService();

const cluster = await startCluster({ ttl: 1 });
const echo = await cluster.createService({ name: 'echo', replicas: 3, appProtocol: 'grpc' });
console.log(`${echo.srvName}: ${echo.pods.map((p) => `${p.name} ${p.target}`).join(', ')}`);

// ---- the client under test ------------------------------------------------------------------

const lb = createBalancer({ service: echo.fqdn, portName: 'grpc', dnsServers: [cluster.dnsServer] });
const channel = createGrpcChannel(lb, { credentials: insecure, idempotent: ['/hlb.test.Echo/Unary'] });
const client = channel.client(Echo);
await lb.ready();

/** `n` calls, 5 at a time; counts replies per pod and failures. */
async function calls(n) {
  const byPod = {};
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next++ < n) {
      const reply = await new Promise((resolve) =>
        client.Unary({ text: 'hi', delayMs: 5 }, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (error, value) =>
          resolve(error ? undefined : value),
        ),
      );
      if (reply === undefined) failed++;
      else byPod[reply.pod] = (byPod[reply.pod] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 5 }, worker));
  return { byPod, failed };
}

let failures = 0;
function report(step, result) {
  failures += result.failed;
  const pods = Object.entries(result.byPod)
    .sort()
    .map(([pod, n]) => `${pod} ${n}`)
    .join(', ');
  // Pods that answered UNAVAILABLE are ejected from the pool for a while: the balancer's state.
  const ejected = lb
    .endpoints()
    .filter((e) => e.state === 'ejected')
    .map((e) => e.name.split('.')[0]);
  console.log(`${step.padEnd(50)} ${pods}; failed ${result.failed}${ejected.length > 0 ? ` (ejected: ${ejected.join(', ')})` : ''}`);
}

// ---- the faults -------------------------------------------------------------------------------

report('healthy', await calls(60));

// A health check sees what the echo calls do not: a pod that says it is not serving.
const health = new Health(echo.pod('echo-1').target, insecure);
const statuses = [];
const watch = health.Watch({ service: '' });
watch.on('data', ({ status }) => statuses.push(status));
watch.on('error', () => {});
const seen = (n) =>
  new Promise((resolve) =>
    (function poll() {
      if (statuses.length >= n) resolve();
      else setTimeout(poll, 5);
    })(),
  );
await seen(1);
echo.setBehaviour('echo-1', { health: 'NOT_SERVING' });
await seen(2);
echo.setBehaviour('echo-1', {});
await seen(3);
console.log(`health of echo-1, watched: ${statuses.join(' -> ')}`);
watch.cancel();
health.close();

const load = calls(200);
await echo.crashPod('echo-2'); // dies at once, still in DNS
report('echo-2 crashed during the calls', await load);
await echo.removeFromDns('echo-2');

const oldIp = echo.pod('echo-1').ip;
await echo.restartPod('echo-1');
await lb.refresh();
const afterRestart = await calls(60);
report(`echo-1 restarted: ${oldIp} -> ${echo.pod('echo-1').ip}`, afterRestart);

await echo.scale(5);
await lb.refresh();
report('scaled to 5', await calls(100));
const scaling = calls(200);
await echo.scale(2); // out of DNS first, then a graceful stop
report('scaled to 2 during the calls', await scaling);

echo.setBehaviour('echo-1', { status: grpc.status.UNAVAILABLE });
report('echo-1 answers UNAVAILABLE (retried elsewhere)', await calls(60));
echo.setBehaviour('echo-1', {});

// ---- checks ---------------------------------------------------------------------------------

const checks = [
  [failures === 0, 'no call failed'],
  [statuses.join() === 'SERVING,NOT_SERVING,SERVING', 'the health watch saw SERVING -> NOT_SERVING -> SERVING'],
  [afterRestart.byPod['echo-1'] > 0 && echo.pod('echo-1').ip !== oldIp, 'the restarted pod got calls at its new IP'],
];
for (const [ok, what] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);

client.close();
await channel.close();
await lb.close();
await cluster.close();
process.exitCode = checks.every(([ok]) => ok) ? 0 : 1;
