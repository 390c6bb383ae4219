import http from 'node:http';

export interface GetResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The request went over a kept-alive connection. */
  readonly reusedSocket: boolean;
}

/** A GET with node:http; rejects on any connection error, reset or timeout. */
export function get(url: string, options: { agent?: http.Agent; timeoutMs?: number } = {}): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: options.agent ?? false, timeout: options.timeoutMs ?? 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        if (!res.complete) return reject(Object.assign(new Error('response incomplete'), { code: 'ECONNRESET' }));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}
