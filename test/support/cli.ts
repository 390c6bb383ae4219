import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { root } from './examples.js';

/**
 * The `headless-lb` command built from this checkout's sources (src/cli/bin.ts, bundled with
 * esbuild: no `npm run build` needed) and run as a child process, as a user runs it. The pack
 * test (cli-pack.test.ts) runs the real build from a packed tarball instead.
 */
export async function buildCli(name: string): Promise<string> {
  const dir = join(root, '.tmp', 'cli', `${name}-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, 'cli.mjs');
  await build({
    entryPoints: [join(root, 'src', 'cli', 'bin.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs the command to its end (SIGKILL after `timeoutMs`). */
export async function runCli(
  cli: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  const child = startCli(cli, args, options);
  return child.exit(options.timeoutMs ?? 15_000);
}

export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** stdout's complete lines parsed as JSON (the lines that parse). */
  readonly json: () => Record<string, unknown>[];
  /** Resolves with the first JSON line matching, received after `from` (an index into json()); rejects after `timeoutMs`. */
  waitForJson(match: (line: Record<string, unknown>) => boolean, timeoutMs: number, from?: number): Promise<Record<string, unknown>>;
  /** Waits for the exit (SIGKILL after `timeoutMs`). */
  exit(timeoutMs: number): Promise<CliResult>;
  /** Sends `signal` to the process, or to its whole process group when started `group` (as a terminal's Ctrl-C does). */
  signal(signal: NodeJS.Signals): void;
}

/**
 * Starts the command (`command` instead of `node <cli>`: npx, say). `group`: in a process group of
 * its own, so that `signal()` reaches every process of it, as a terminal's Ctrl-C does (npx does
 * not pass a SIGINT sent to it alone on to the command).
 */
export function startCli(
  cli: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; command?: readonly string[]; group?: boolean } = {},
): RunningCli {
  const started = performance.now();
  const command = options.command ?? [process.execPath, cli];
  const group = options.group === true;
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: options.cwd ?? root,
    env: { ...process.env, NO_COLOR: undefined, ...options.env },
    stdio: 'pipe',
    detached: group,
  });
  let stdout = '';
  let stderr = '';
  const parsed: Record<string, unknown>[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
    for (const wake of [...waiters]) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => {
      for (const wake of [...waiters]) wake();
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    json: () => parsed,
    waitForJson(match, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = parsed.slice(from).find(match);
          if (found !== undefined) {
            finish();
            resolve(found);
          } else if (done) {
            finish();
            reject(new Error(`the command exited before the expected line; stderr: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `no matching JSON line within ${timeoutMs} ms; last lines:\n${stdout.split('\n').slice(-8).join('\n')}\nstderr: ${stderr}`,
            ),
          );
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    signal(signal) {
      if (done) return;
      if (group && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    },
    async exit(timeoutMs) {
      const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
