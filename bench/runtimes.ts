/**
 * runc vs runsc (gVisor) agents, side by side (npm run bench -- --runtimes), on a lab engine of
 * the bench's own with Debian's runsc registered (runtime arguments detected as in the tests):
 *  - cold converge of 10 bottles (a sidecar and an agent each): the whole `reconcile --once`;
 *  - per call: `docker exec true` into an agent (median of 20);
 *  - syscall-heavy work in an agent: `dd bs=1 count=200000` (400k read/write calls).
 */
import fs from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { World, bottleYaml, dockerExec } from '../test/helpers/harness.js';
import { Lab, writeRunscConfig } from '../test/helpers/lab-engine.js';
import { ms, table } from './table.js';
import { median } from './lib.js';

const N = 10;

export async function runtimesBench(onCleanup: (fn: () => Promise<void>) => void): Promise<string> {
  const w = await new World('rtbench').setup();
  const cfg = `${w.stateDir}-daemon.json`;
  const args = await writeRunscConfig(cfg);
  const lab = await Lab.start(1, { images: ['bottled/busybox:local', 'bottled/sidecar:local'], dockerdArgs: ['--config-file', cfg] });
  onCleanup(async () => {
    await lab.stop();
    await w.cleanup();
    await fs.rm(cfg, { force: true });
  });
  const engine = lab.nodes[0]!.docker;
  const run = (extra: string[]) => w.run(['reconcile', '--once', '--docker-host', lab.nodes[0]!.host, ...extra], { env: { LOG_LEVEL: 'info' } });
  const rows: string[][] = [];
  for (const runtime of ['runc', 'runsc']) {
    for (let i = 0; i < N; i++) {
      await w.write(`b${i}.yaml`, bottleYaml(`b${i}`, `sidecars:\n  - name: proxy\n    image: bottled/sidecar:local\n    aliases: [egress]\nagent:\n  image: bottled/busybox:local\n${runtime === 'runsc' ? '  runtime: runsc\n' : ''}`));
    }
    const t0 = performance.now();
    const r = await run([]);
    const cold = performance.now() - t0;
    if (r.code !== 0) throw new Error(`runtimes bench: ${runtime} converge exited ${r.code}: ${r.stderr.slice(-1500)}`);
    const agent = w.name_('b0');
    const calls: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await dockerExec(agent, ['true'], engine);
      calls.push(performance.now() - t);
    }
    const t1 = performance.now();
    const dd = await dockerExec(agent, ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', 'count=200000'], engine);
    const ddMs = performance.now() - t1;
    if (dd.code !== 0) throw new Error(`runtimes bench: dd in ${agent} exited ${dd.code}`);
    const kernel = (await dockerExec(agent, ['uname', '-r'], engine)).out.trim();
    rows.push([`${runtime} (kernel ${kernel})`, ms(cold), ms(median(calls)), ms(ddMs)]);
    for (let i = 0; i < N; i++) await w.rm(`b${i}.yaml`);
    const down = await run(['--allow-empty', '--max-deletions', 'unlimited']);
    if (down.code !== 0) throw new Error(`runtimes bench: teardown exited ${down.code}`);
  }
  return [
    table(`Agents under runc and runsc (gVisor), ${N} bottles on a lab engine, ms`, ['runtime', `cold converge (${N} bottles)`, 'exec true (median of 20)', 'dd bs=1 count=200000'], rows),
    `runsc runtime arguments here: ${args.length ? args.join(' ') : '(none: the default network mode works on this host)'}. Sidecars run under runc in both rows.`,
  ].join('\n');
}
