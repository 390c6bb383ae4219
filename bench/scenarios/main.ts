/**
 * Scenario benchmark: headless-lb against grpc-js, undici's DNS interceptor, BalancedPool and two
 * oracles (HTTP and gRPC) on five headless-Service scenarios (scale-up, graceful scale-down, crash, one slow pod, restart), with a real
 * DNS server (Knot, shaped like CoreDNS, TTL 5) and real pods on 127.x in another process.
 *
 *   npm run bench:scenarios                        # 1 run (≈ 10 min), charts into docs/img/
 *   npm run bench:scenarios -- --runs 3            # the published numbers (≈ 30 min)
 *   npm run bench:scenarios -- --scenarios S1,S4 --contenders hlb-http-ll,oracle
 *   npm run bench:scenarios -- --runs 3 --update-docs   # also rewrites the table in docs/scenarios.md
 *
 * Other options: --concurrency 16, --out <dir> (default bench/scenarios/results), --charts <dir>
 * (default docs/img), --no-charts, --render <latest.json> (tables, charts and docs again from saved
 * results, without running anything). The same file is the pods process (`--role pods`) and the
 * client process (`--role client <config>`).
 */
import { runClient } from './client.js';
import { parseArgs, renderSaved, runBench } from './orchestrate.js';
import { servePods } from './pods.js';
import { send, type ClientConfig } from './protocol.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const role = argv[0] === '--role' ? argv[1] : undefined;
  if (role === 'pods') return servePods();
  if (role === 'client') {
    process.stdin.on('end', () => process.exit(1)); // the orchestrator is gone
    try {
      await runClient(JSON.parse(argv[2]!) as ClientConfig);
    } catch (error) {
      send({ type: 'fatal', error: (error as Error)?.stack ?? String(error) });
      process.exit(1);
    }
    return;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(
      'npm run bench:scenarios -- [--runs N] [--scenarios S1,S2,…] [--contenders id,…] [--concurrency 16] [--out dir] [--charts dir | --no-charts] [--update-docs] [--render latest.json]',
    );
    return;
  }
  let options: ReturnType<typeof parseArgs>;
  try {
    options = parseArgs(argv);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  const render = argv.indexOf('--render');
  if (render >= 0) return renderSaved(argv[render + 1]!, options);
  await runBench(options);
}

await main();
