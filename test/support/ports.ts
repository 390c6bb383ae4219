import dgram from 'node:dgram';
import net from 'node:net';

/**
 * A port of 127.0.0.1 that was free for both TCP and UDP a moment ago. Another process may take
 * it before the caller binds it, so callers retry on EADDRINUSE (knotd: exit status 1).
 */
export async function findFreeDualPort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host, port: 0, exclusive: true }, () => resolve());
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind({ address: host, port, exclusive: true }, () => resolve(true));
    });
    await Promise.all([
      new Promise<void>((resolve) => tcp.close(() => resolve())),
      udpFree ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
    ]);
    if (udpFree) return port;
  }
  throw new Error(`no port of ${host} free for both TCP and UDP after 50 attempts`);
}
