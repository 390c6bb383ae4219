import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { root } from '../support/examples.js';
import { bundleFixture } from '../support/fixture-bundle.js';

/**
 * `cluster.close()` releases every handle of gRPC pods, whatever they went through: run in a
 * child process, which must then exit by itself, with nothing of the test runner counted.
 */
let dir: string;
let script: string;

beforeAll(async () => {
  // Inside the repository: grpc-js and proto-loader resolve from its node_modules, and the kit
  // finds proto/ above the script.
  dir = join(root, '.tmp', `grpc-kit-leaks-${process.pid}`);
  await mkdir(dir, { recursive: true });
  script = join(dir, 'lifecycle.mjs');
  await bundleFixture('grpc-kit-lifecycle', script, ['@grpc/grpc-js', '@grpc/proto-loader']);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('close() releases every socket, server and timer of gRPC pods: the process exits by itself', async () => {
  const { code, out, err } = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    });
  });
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(JSON.parse(out.trim().split('\n').at(-1) ?? '{}')).toEqual({ ok: 21, active: [] });
});
