import { isIPv4, type Server } from 'node:net';
import { InvalidOptionError } from '../errors.js';

/**
 * Hands out pod addresses from one block `127.A.B.x` chosen at random per cluster, so that test
 * files running in parallel (each with its pods on port 8080) do not collide. Only ever
 * 127.0.0.0/8: traffic to it cannot leave the machine.
 */
export class LoopbackBlock {
  #prefix: string;
  #next = FIRST_HOST;

  constructor() {
    this.#prefix = randomPrefix();
  }

  /** The next unused address; moves to a fresh block when this one is used up. */
  next(): string {
    if (this.#next > LAST_HOST) {
      this.#prefix = randomPrefix();
      this.#next = FIRST_HOST;
    }
    return `${this.#prefix}.${this.#next++}`;
  }
}

// .11 upwards, like the 127.0.0.11… examples; low addresses stay free for anything else.
const FIRST_HOST = 11;
const LAST_HOST = 254;

function randomPrefix(): string {
  // 127.100.0.0 – 127.250.255.0: far from 127.0.0.x and 127.0.1.1, which systems use.
  const a = 100 + Math.floor(Math.random() * 151);
  const b = Math.floor(Math.random() * 256);
  return `127.${a}.${b}`;
}

export function assertLoopback(field: string, address: string): void {
  if (!isIPv4(address) || !address.startsWith('127.'))
    throw new InvalidOptionError(field, address, 'an IPv4 loopback address (127.0.0.0/8)');
}

const MAX_BIND_ATTEMPTS = 20;

/**
 * Listens on `address:port`, exclusively; with an `address` function, a taken address
 * (EADDRINUSE) is skipped for the next one it gives.
 */
export async function listenOnLoopback<S extends Server>(
  create: () => S,
  address: string | (() => string),
  port: number,
): Promise<{ readonly server: S; readonly address: string }> {
  for (let attempt = 1; ; attempt++) {
    const candidate = typeof address === 'function' ? address() : address;
    assertLoopback('address', candidate);
    const server = create();
    try {
      await listen(server, candidate, port);
      return { server, address: candidate };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof address !== 'function' || code !== 'EADDRINUSE' || attempt >= MAX_BIND_ATTEMPTS) throw error;
    }
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
