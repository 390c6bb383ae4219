// headless-lb/http: Node's global fetch and undici.request balanced over the pods of a headless
// Service — here an embedded one from headless-lb/testing (real HTTP pods on 127.x, a
// Kubernetes-shaped DNS server). A pod crashes and another restarts with a new IP while requests
// flow; none fails. Run: npm run build && node examples/http-fetch.mjs
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createBalancer } from 'headless-lb';
import { createDispatcher } from 'headless-lb/http';
import { startCluster } from 'headless-lb/testing';

const cluster = await startCluster({ ttl: 1 });
const web = await cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });

const lb = createBalancer({ service: web.fqdn, portName: 'http', dnsServers: [cluster.dnsServer], refresh: { minMs: 200, maxMs: 1000 } });
await lb.ready();
const dispatcher = createDispatcher(lb, { keyHeader: 'x-user-id', timeoutMs: 2000 });
const url = `http://${web.fqdn}:8080/`;

// 1. global fetch: the Host header is the Service name, the connection goes to a pod's IP
const res = await fetch(url, { dispatcher });
console.log('fetch        →', res.status, await res.json());

// 2. undici.request, with a shard key header (sticky with picker: 'shard-key')
const { statusCode, body } = await request(url, { dispatcher, headers: { 'x-user-id': 'user-42' } });
console.log('undici       →', statusCode, await body.json());

// 3. traffic while a pod crashes and another restarts with a new IP
let ok = 0;
let failed = 0;
const byPod = new Map();
let running = true;
const load = Promise.all(
  Array.from({ length: 8 }, async () => {
    while (running) {
      try {
        const r = await fetch(url, { dispatcher });
        const { pod } = await r.json();
        byPod.set(pod, (byPod.get(pod) ?? 0) + 1);
        ok++;
      } catch (error) {
        failed++;
        console.error(error);
      }
    }
  }),
);
await sleep(500);
console.log('crash web-1  (it stays in DNS: refused connections fail over, the pod is ejected)');
await web.crashPod('web-1');
await sleep(500);
console.log(`restart web-2 (new IP ${web.pod('web-2').ip} → …; the old pool drains)`);
await web.restartPod('web-2');
console.log(`              … now ${web.pod('web-2').ip}`);
await sleep(1000);
running = false;
await load;
console.log(`requests: ${ok} ok, ${failed} failed; by pod:`, Object.fromEntries(byPod));
console.log('dispatcher:', dispatcher.stats());

await dispatcher.close(); // the pools; the balancer is closed separately
await lb.close();
await cluster.close();
