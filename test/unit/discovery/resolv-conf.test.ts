import { describe, expect, it } from 'vitest';
import { parseResolvConf, searchCandidates } from '../../../src/discovery/resolv-conf.js';

describe('parseResolvConf', () => {
  it('reads a pod resolv.conf', () => {
    const conf = parseResolvConf(
      ['nameserver 10.96.0.10', 'search default.svc.cluster.local svc.cluster.local cluster.local', 'options ndots:5 timeout:2', ''].join(
        '\n',
      ),
    );
    expect(conf).toEqual({
      nameservers: ['10.96.0.10'],
      search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
    });
  });

  it('ignores comments, keeps the last search/domain line, defaults ndots to 1', () => {
    const conf = parseResolvConf('# c\nsearch a.example\ndomain b.example.\nnameserver 1.1.1.1 ; x\n');
    expect(conf).toEqual({ nameservers: ['1.1.1.1'], search: ['b.example'], ndots: 1 });
  });
});

describe('searchCandidates', () => {
  const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

  it('tries the search list first for short names (ndots 5)', () => {
    expect(searchCandidates('web-headless', search, 5)).toEqual([
      'web-headless.default.svc.cluster.local',
      'web-headless.svc.cluster.local',
      'web-headless.cluster.local',
      'web-headless',
    ]);
    expect(searchCandidates('web-headless.other', search, 5)[1]).toBe('web-headless.other.svc.cluster.local');
  });

  it('tries a name with enough dots as is first', () => {
    expect(searchCandidates('web.default.svc.cluster.local', search, 2)[0]).toBe('web.default.svc.cluster.local');
  });

  it('takes an absolute name as is', () => {
    expect(searchCandidates('web.default.svc.cluster.local.', search, 5)).toEqual(['web.default.svc.cluster.local']);
  });
});
