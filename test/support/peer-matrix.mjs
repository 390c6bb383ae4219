// The peer versions the examples are also run against, besides the development ones. Shared by
// scripts/install-peer-matrix.mjs (installs them) and the tests (run against them).

/** Other minors of @grpc/grpc-js's supported range (^1.10.0); the development copy is the newest. */
export const GRPC_MINORS = ['1.10', '1.11', '1.12', '1.13'];

/** undici 8 needs Node >= 22.19. */
export function undici8Runs(nodeVersion) {
  const [major = 0, minor = 0] = nodeVersion.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 19);
}

/** What to install on this Node: group/name is the folder under .tmp, pkg the package whose version is checked. */
export function peerMatrix(nodeVersion) {
  const grpc = GRPC_MINORS.map((minor) => ({
    group: 'grpc-js-matrix',
    name: minor,
    pkg: '@grpc/grpc-js',
    spec: `@grpc/grpc-js@~${minor}.0`,
  }));
  const undici = undici8Runs(nodeVersion) ? [{ group: 'undici-matrix', name: '8', pkg: 'undici', spec: 'undici@8' }] : [];
  return [...grpc, ...undici].map((entry) => ({ ...entry, dir: `.tmp/${entry.group}/${entry.name}` }));
}
