import { readFileSync } from 'node:fs';

/** What a pod's resolver takes from /etc/resolv.conf. */
export interface ResolvConf {
  readonly nameservers: readonly string[];
  readonly search: readonly string[];
  readonly ndots: number;
}

/** glibc's default when resolv.conf says nothing. */
const DEFAULT_NDOTS = 1;

/** Parses resolv.conf text (nameserver, search/domain — the last one wins — and options ndots:N). */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  let ndots = DEFAULT_NDOTS;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver':
        if (args[0] !== undefined) nameservers.push(args[0]);
        break;
      case 'search':
        search = args.map(stripDot).filter((s) => s !== '');
        break;
      case 'domain':
        search = args[0] === undefined ? [] : [stripDot(args[0])];
        break;
      case 'options':
        for (const option of args) {
          const match = /^ndots:(\d+)$/.exec(option);
          if (match) ndots = Math.min(15, Number(match[1]));
        }
        break;
      default:
        break;
    }
  }
  return { nameservers, search, ndots };
}

/** Reads /etc/resolv.conf (or another file); an unreadable file means no search list. */
export function readResolvConf(path = '/etc/resolv.conf'): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return { nameservers: [], search: [], ndots: DEFAULT_NDOTS };
  }
}

/** A DNS name without its trailing dot (`a.b.` → `a.b`). */
export function stripDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** A DNS name for comparison: no trailing dot, ASCII letters in lower case (RFC 4343); the root is ''. */
export function nameKey(name: string): string {
  return stripDot(name).replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * The names a pod's resolver would try for `name`, in order: an absolute name (trailing dot)
 * only itself; a name with at least `ndots` dots first as is, then with each search domain;
 * a shorter name first with each search domain, then as is.
 */
export function searchCandidates(name: string, search: readonly string[], ndots: number): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const dots = name.split('.').length - 1;
  const expanded = search.map((domain) => `${name}.${domain}`);
  const ordered = dots >= ndots ? [name, ...expanded] : [...expanded, name];
  return [...new Set(ordered.map((n) => n.toLowerCase()))];
}
