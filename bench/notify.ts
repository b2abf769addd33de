/**
 * --notify against receivers that answer, and one that never does (npm run bench -- --notify):
 * 10 bottles break at once (their sidecar's image removed: each is held ImageMissing, one
 * not-ready message each), measured as the pass's own time (passMs) and the whole process
 * (which waits for messages in flight at most 10 s before it exits). Between samples the bottles
 * recover without --notify, so every sample sends the same 10 messages.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { World, bottleYaml, docker, passLog } from '../test/helpers/harness.js';
import { table, ms } from './table.js';
import { median } from './lib.js';

const N = 10;
const REPEAT = 3;

export async function notifyBench(onCleanup: (fn: () => Promise<void>) => void): Promise<string> {
  const w = await new World('nbench').setup();
  const image = `${w.prefix}-nside`;
  const tag = () => docker.getImage('bottled/busybox:local').tag({ repo: image, tag: '1' });
  onCleanup(async () => {
    await w.cleanup();
    await docker.getImage(`${image}:1`).remove().catch(() => {});
  });
  await tag();
  for (let i = 0; i < N; i++) await w.write(`b${i}.yaml`, bottleYaml(`b${i}`, `sidecars:\n  - name: proxy\n    image: ${image}:1\nagent:\n  image: bottled/busybox:local\n`));
  if ((await w.reconcile()).code !== 0) throw new Error('notify bench: the bottles did not converge');

  let got = 0;
  const fast = http.createServer((req, res) => req.on('data', () => {}).on('end', () => ((got++), res.end('ok'))));
  // Accepts the connection and never answers: the worst a receiver can do short of refusing.
  const held: net.Socket[] = [];
  const hole = net.createServer((s) => void held.push(s.on('error', () => {})));
  await Promise.all([new Promise<void>((r) => fast.listen(0, '127.0.0.1', r)), new Promise<void>((r) => hole.listen(0, '127.0.0.1', r))]);
  onCleanup(async () => {
    fast.close();
    for (const s of held) s.destroy();
    hole.close();
  });
  const urlOf = (s: http.Server | net.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`;

  const breakAll = async () => {
    for (let i = 0; i < N; i++) await docker.getContainer(w.name_(`b${i}`, 'proxy')).remove({ force: true }).catch(() => {});
    await docker.getImage(`${image}:1`).remove();
  };
  const recover = async () => {
    await tag();
    if ((await w.reconcile()).code !== 0) throw new Error('notify bench: the bottles did not recover');
  };
  const sample = async (extra: string[]) => {
    await breakAll();
    const t0 = performance.now();
    const r = await w.reconcile(['--retries', '0', ...extra]);
    const wall = performance.now() - t0;
    const p = passLog(r) as { passMs?: number } | undefined;
    if (!p?.passMs) throw new Error(`notify bench: no pass line (exit ${r.code}): ${r.stderr.slice(-1500)}`);
    await recover();
    return { passMs: p.passMs, wallMs: wall };
  };

  const cases: [string, string[]][] = [
    ['no --notify', []],
    ['--notify, a receiver that answers', ['--notify', urlOf(fast)]],
    ['--notify, a receiver that never answers', ['--notify', urlOf(hole)]],
  ];
  const rows: string[][] = [];
  for (const [name, extra] of cases) {
    const s = [];
    for (let i = 0; i < REPEAT; i++) s.push(await sample(extra));
    rows.push([name, ms(median(s.map((x) => x.passMs))), ms(median(s.map((x) => x.wallMs)))]);
  }
  return [
    table(`--notify: ${N} bottles break in one pass (${N} messages), median of ${REPEAT}, ms`, ['receiver', 'pass (passMs)', 'process (exits)'], rows),
    `Messages the answering receiver got: ${got} (expected ${N * REPEAT}). A message is tried for 5 s, 4 times with backoff; --once waits at most one timeout (5 s) for those in flight, after it has let go of the lock.`,
  ].join('\n');
}
