// Graceful shutdown in a Kubernetes pod. This process plays the pod: an HTTP server whose handler
// calls a headless Service twice (here an embedded one from headless-lb/testing, whose pods answer
// in 200 ms). On SIGTERM it stops accepting, lets the requests already accepted finish (they still
// call the pods), drains the balancer, closes the dispatcher, and then ends by itself.
// Run: npm run build && node examples/graceful-shutdown.mjs
import { get, createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBalancer } from 'headless-lb';
import { createDispatcher } from 'headless-lb/http';
import { startCluster } from 'headless-lb/testing';

const cluster = await startCluster({ ttl: 5 });
const backend = await cluster.createService({ name: 'backend', replicas: 3, behaviour: { delayMs: 200 } });
const lb = createBalancer({ service: backend.fqdn, portName: 'http', dnsServers: [cluster.dnsServer] });
await lb.ready();
const dispatcher = createDispatcher(lb);
const started = performance.now();
const log = (...args) => console.log(`${String(Math.round(performance.now() - started)).padStart(5)} ms`, ...args);

// The application: each request calls the backend twice, one call after the other.
const server = createServer(async (_req, res) => {
  try {
    const pods = [];
    for (let i = 0; i < 2; i++) {
      const reply = await fetch(`http://${backend.fqdn}:8080/`, { dispatcher });
      pods.push((await reply.json()).pod);
    }
    res.end(pods.join(' then '));
  } catch (error) {
    res.statusCode = 503;
    res.end(String(error.cause ?? error));
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;

// Background work: a poll of the backend, over and over, until the balancer refuses it.
const poller = (async () => {
  for (let polls = 0; ; polls++) {
    try {
      await (await fetch(`http://${backend.fqdn}:8080/`, { dispatcher })).json();
    } catch (error) {
      log(`poller stops after ${polls} polls: ${error.cause?.name ?? error}`);
      return;
    }
  }
})();

// SIGKILL follows terminationGracePeriodSeconds (default 30 s) after SIGTERM: stay within it.
process.once('SIGTERM', async () => {
  log('SIGTERM');
  // 1. Stop accepting. The requests already accepted finish, calling the pods as usual.
  await Promise.race([new Promise((done) => server.close(done)), sleep(20_000, undefined, { ref: false })]);
  log('server closed; balancer', lb.stats().state);
  // 2. Calls still in flight (background work) get 5 s more; new ones are refused.
  lb.on('draining', ({ calls }) => log(`balancer draining: ${calls} call(s) in flight, new ones refused`));
  lb.on('close', ({ stopped }) => log(`balancer closed (${stopped} calls cut short)`));
  await lb.close({ drainMs: 5_000 });
  // 3. Response bodies and streams still open finish; pools close.
  await dispatcher.close();
  log('dispatcher closed');
  await cluster.close(); // the example's pods and DNS server, not part of a real application
});
process.on('exit', () => log('exit: nothing left to keep the process up'));

/** One inbound request, as a client of the pod would make it. */
const ask = (name) =>
  new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(`${name}: ${res.statusCode} ${body}`));
    });
    req.on('error', (error) => resolve(`${name}: ${error.code}`));
  });

const inbound = [];
for (let i = 1; i <= 4; i++) {
  inbound.push(ask(`request ${i}`));
  await sleep(100);
}
process.kill(process.pid, 'SIGTERM'); // what the kubelet sends; requests 3 and 4 are mid-way
await sleep(50);
inbound.push(ask('request 5 (after SIGTERM)'));
for (const line of await Promise.all(inbound)) log(line);
await poller;
