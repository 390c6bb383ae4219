/** `--help` texts, one per command, each with examples. */

const LOOKUP_OPTIONS = `How to look the service up:
  --port N                A/AAAA records: every address, on port N
  --port-name NAME        SRV records _NAME._PROTOCOL.<service>: pod names, ports, weights
  --protocol tcp|udp|sctp protocol of the SRV name (default tcp)
  --dns-server IP[:PORT]  DNS server to ask; repeat for several (default: /etc/resolv.conf)
  --search DOMAIN         search domain for short names; repeat for several; --search= for
                          none (default: /etc/resolv.conf)
  --ndots N               names with fewer dots try the search domains first (default:
                          /etc/resolv.conf, else 1)
  --family 4|6|auto       address records: A, AAAA, or A then AAAA (default auto)
  --dns-timeout MS        timeout of one DNS message (default 1000)
  --json                  machine-readable output
  -h, --help              this help`;

export const MAIN_HELP = `headless-lb: see what a client-side load balancer sees of a Kubernetes headless Service.

Usage: headless-lb <command> [options]

Commands:
  watch <service>     live view of the pool: endpoints, health, DNS, events (like top)
  resolve <service>   one lookup: the pool and what DNS said; exit code for scripts
  demo                a live demo on an embedded cluster (no Kubernetes needed)

Run 'headless-lb <command> --help' for a command's options.

Examples:
  npx headless-lb watch web-headless --port-name http --probe http:/healthz
  npx headless-lb resolve web-headless.default.svc.cluster.local --port 8080
  npx headless-lb demo
`;

export const WATCH_HELP = `Usage: headless-lb watch <service> (--port N | --port-name NAME) [options]

A live view, redrawn in place: the DNS answer (names asked, server, TTL, countdown to the next
lookup, failures), one row per endpoint (pod, address, port, weight/priority, health state, and
with --probe its latency and success rate), and an event log (added, removed, readdressed,
ejected, returned, DNS errors and empty answers, records not used). Probes go through the
library's own balancer, picker and outlier detection: the view is what an application gets.
Ctrl-C quits and closes the balancer.

${LOOKUP_OPTIONS}

What to send:
  --probe KIND            tcp (connect), http or http:/PATH (GET, 5xx fails), grpc-health
                          (grpc.health.v1.Health/Check, plaintext): one probe per endpoint
                          per interval, through the balancer (default: no traffic, DNS only)
  --picker NAME           round-robin (default), random, least-request, least-latency,
                          weighted-round-robin, shard-key
  --slow-start MS         ramp new and returning endpoints up over MS (default off)
  --subset-size N         subsetting as a client with this subset size would do: the view
                          marks the members (column SUBSET), and probes go to them only
  --client-id ID          the client id of the subset (default: HOSTNAME, else a random id)
  --interval MS           probe and refresh interval (default 1000; the view redraws at
                          least once a second)

Not on a terminal: each event as a line, and a plain frame every interval. With --json: one
JSON object per line, each event as it happens and a "snapshot" every interval (for jq and
scripts). Colour on a terminal only; NO_COLOR turns it off.

Examples:
  headless-lb watch web-headless --port-name http
  headless-lb watch web-headless.default.svc.cluster.local --port 8080 --probe http:/healthz
  headless-lb watch grpc-headless --port-name grpc --probe grpc-health --picker least-request
  headless-lb watch web-headless --port-name http --json | jq 'select(.type != "snapshot")'
`;

export const RESOLVE_HELP = `Usage: headless-lb resolve <service> (--port N | --port-name NAME) [options]

One lookup, made as the balancer makes it: prints the pool (names, addresses, ports, weights,
priorities) and what DNS said (the names asked with the search list, the one that answered,
the server, the TTL, records not used).

Exit code: 0 endpoints found, 1 no endpoints (NXDOMAIN or NODATA), 2 the lookup failed
(timeout, SERVFAIL, REFUSED, unusable answer), 64 bad arguments.

${LOOKUP_OPTIONS}

Examples:
  headless-lb resolve web-headless.default.svc.cluster.local --port 8080
  headless-lb resolve web-headless --port-name http --search default.svc.cluster.local
  headless-lb resolve web-headless --port-name http --json | jq -r '.endpoints[].address'
  until headless-lb resolve web-headless --port 8080 >/dev/null; do sleep 1; done
`;

export const DEMO_HELP = `Usage: headless-lb demo

A live demo: a headless Service on an embedded, Kubernetes-shaped DNS server (TTL 5 s) with real
HTTP pods on 127.x.y.z loopback addresses. Steady traffic flows through a balancer while the
Service is scaled up, a pod crashes, a pod restarts with a new IP, and the Service is scaled
down. About 35 s; exit code 0 when no request failed.

Example:
  npx headless-lb demo
`;
