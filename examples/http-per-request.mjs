// headless-lb/http: one request's own retries, deadlines, idempotence and hedging, three ways —
// undici.request and dispatcher.request take a `headlessLb` option; fetch, which drops unknown
// options, takes the `x-headless-lb` header (when the dispatcher allows it), removed before the
// request leaves. Pods from headless-lb/testing; each line checks what the pods saw.
// Run: npm run build && node examples/http-per-request.mjs
import assert from 'node:assert/strict';
import http from 'node:http';
import { fetch as undiciFetch, request } from 'undici';
import { createBalancer } from 'headless-lb';
import { createDispatcher } from 'headless-lb/http';
import { startCluster } from 'headless-lb/testing';

const cluster = await startCluster({ ttl: 5 });
const web = await cluster.createService({ name: 'web-headless', replicas: 3, port: 8080, portName: 'http', podPrefix: 'web' });
const lb = createBalancer({ service: web.fqdn, portName: 'http', dnsServers: [cluster.dnsServer], outlierDetection: false });
await lb.ready();
// The dispatcher's policy: 2 retries, no deadline. The header may set these keys only.
const dispatcher = createDispatcher(lb, { retries: 2, perRequestHeader: ['retries', 'timeout-ms', 'idempotent'] });
const url = `http://${web.fqdn}:8080/`;
const hits = () => web.pods.reduce((sum, pod) => sum + pod.requests, 0);
async function sentTo(send) {
  const before = hits();
  const status = await send();
  return { status, pods: hits() - before };
}
const every = (behaviour) => web.pods.forEach((pod) => web.setBehaviour(pod.name, behaviour));

every({ status: 503 }); // every pod failing: count the attempts
const viaRequest = await sentTo(async () => {
  const { statusCode, body } = await request(url, { dispatcher, headlessLb: { retries: 0 } });
  await body.dump();
  return statusCode;
});
console.log('undici.request      headlessLb: { retries: 0 }             →', viaRequest);
assert.deepEqual(viaRequest, { status: 503, pods: 1 });

const viaDispatcher = await sentTo(async () => {
  const { statusCode, body } = await dispatcher.request({
    origin: url,
    path: '/orders',
    method: 'POST',
    body: '{}',
    headlessLb: { idempotent: true },
  });
  await body.dump();
  return statusCode;
});
console.log('dispatcher.request  POST, headlessLb: { idempotent: true } →', viaDispatcher);
assert.deepEqual(viaDispatcher, { status: 503, pods: 3 });

const viaFetch = await sentTo(async () => {
  const res = await fetch(url, { dispatcher, headers: { 'x-headless-lb': 'retries=1' } });
  await res.arrayBuffer();
  return res.status;
});
console.log("fetch               'x-headless-lb: retries=1'             →", viaFetch);
assert.deepEqual(viaFetch, { status: 503, pods: 2 });
const viaUndiciFetch = await sentTo(async () => {
  const res = await undiciFetch(url, { dispatcher, method: 'POST', headers: { 'x-headless-lb': 'idempotent, retries=1' } });
  await res.arrayBuffer();
  return res.status;
});
console.log("undici.fetch        POST, 'x-headless-lb: idempotent, retries=1' →", viaUndiciFetch);
assert.deepEqual(viaUndiciFetch, { status: 503, pods: 2 });

every({ delayMs: 1000 }); // slow pods: a deadline of the request's own
const started = performance.now();
const late = await fetch(url, { dispatcher, headers: { 'x-headless-lb': 'timeout-ms=100' } }).catch((error) => error);
console.log(
  "fetch               'x-headless-lb: timeout-ms=100'        →",
  late.cause?.code,
  `after ${Math.round(performance.now() - started)} ms`,
);
assert.equal(late.cause?.code, 'ERR_HLB_DEADLINE_EXCEEDED');
const hedged = await sentTo(async () => {
  const { statusCode, body } = await request(url, { dispatcher, headlessLb: { hedge: { delayMs: 50 } } });
  await body.dump();
  return statusCode;
});
console.log('undici.request      headlessLb: { hedge: { delayMs: 50 } } →', hedged);
assert.deepEqual(hedged, { status: 200, pods: 2 });

// A key the dispatcher does not allow, or a bad value: the request fails, naming the field.
const refused = await fetch(url, { dispatcher, headers: { 'x-headless-lb': 'hedge-delay-ms=5' } }).catch((error) => error);
console.log('fetch               not allowed                            →', refused.cause?.message);
assert.equal(refused.cause?.field, 'x-headless-lb: hedge-delay-ms');
const bad = await request(url, { dispatcher, headlessLb: { retries: -1 } }).catch((error) => error);
console.log('undici.request      bad value                              →', bad.message);
assert.equal(bad.field, 'headlessLb.retries');

// The pods never see the header: a pod that records what it gets.
const seen = [];
const recorder = http.createServer((req, res) => res.end(seen.push(req.headers) && 'ok'));
await new Promise((resolve) => recorder.listen(0, '127.0.0.1', resolve));
const recorded = createBalancer({ endpoints: [{ address: '127.0.0.1', port: recorder.address().port }] });
const toRecorder = createDispatcher(recorded, { perRequestHeader: true });
const recorderUrl = `http://web.default.svc.cluster.local:${recorder.address().port}/`;
await (await fetch(recorderUrl, { dispatcher: toRecorder, headers: { 'x-headless-lb': 'retries=1', 'x-kept': '1' } })).text();
await (await request(recorderUrl, { dispatcher: toRecorder, headers: ['x-headless-lb', 'retries=1', 'x-kept', '2'] })).body.text();
await (await undiciFetch(recorderUrl, { dispatcher: toRecorder, headers: { 'x-headless-lb': 'retries=1', 'x-kept': '3' } })).text();
console.log(
  'at the pod          x-headless-lb:',
  seen.map((h) => h['x-headless-lb']),
  'x-kept:',
  seen.map((h) => h['x-kept']),
);
assert.deepEqual(
  seen.map((h) => [h['x-headless-lb'], h['x-kept']]),
  [
    [undefined, '1'],
    [undefined, '2'],
    [undefined, '3'],
  ],
);

await toRecorder.close();
await recorded.close();
recorder.close();
await dispatcher.close();
await lb.close();
await cluster.close();
console.log('per-request options: all honoured');
