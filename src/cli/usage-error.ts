/** Exit codes of the command (sysexits.h's EX_USAGE for bad arguments). */
export const EXIT = { ok: 0, empty: 1, dnsFailure: 2, usage: 64 } as const;

/** A bad command line: names the flag (or argument) and the value. Exits with EXIT.usage. */
export class UsageError extends Error {
  readonly flag: string;
  readonly value: unknown;

  constructor(flag: string, value: unknown, expected: string) {
    super(value === undefined ? `${flag}: ${expected}` : `invalid ${flag} ${JSON.stringify(value)}: expected ${expected}`);
    this.name = 'UsageError';
    this.flag = flag;
    this.value = value;
  }
}
