import { afterAll, beforeAll, expect } from 'vitest';

/**
 * Fails a test file that leaves a handle open: every socket, server, child process or ref'd
 * timer it created must be released by the time its afterAll hooks have run. (Unref'd timers
 * cannot keep a process alive and are checked by the exit test in test/integration/leaks.test.ts.)
 */
const TRACKED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'UDPWrap', 'Timeout', 'ProcessWrap', 'PipeWrap', 'FSEvent', 'StatWatcher']);

function countHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of process.getActiveResourcesInfo()) {
    if (TRACKED.has(name)) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

let before = new Map<string, number>();

beforeAll(() => {
  before = countHandles();
});

afterAll(async () => {
  // Let close callbacks run.
  let leaked: string[] = [];
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const after = countHandles();
    leaked = [...after].filter(([name, n]) => n > (before.get(name) ?? 0)).map(([name, n]) => `${name} x${n - (before.get(name) ?? 0)}`);
    if (leaked.length === 0) return;
  }
  expect(leaked, 'handles left open by this test file').toEqual([]);
});
