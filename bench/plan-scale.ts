/**
 * The per-pass cost that grows with N, without an engine: load N spec files, render, plan a
 * cold start, plan a no-op over the converged result (a simulated engine), write N statuses.
 *
 *   node --import tsx bench/plan-scale.ts [N ...]        (default 50 100 200 500)
 *
 * Prints ms per phase and per bottle, so whatever grows faster than N shows as a rising
 * per-bottle figure. A figure, never a timed test.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { plan } from '../controller/plan.js';
import { SnapshotIndex } from '../controller/plan-index.js';
import { renderBottle } from '../controller/render.js';
import { writeUnitStatus } from '../controller/status-writer.js';
import type { Inventory } from '../state/inventory.js';
import { StatePaths } from '../state/paths.js';
import { loadSpecs } from '../specs/load.js';
import { DirSource } from '../specs/source.js';
import { apply, empty, OWNER } from '../test/fixtures/plan-world.js';
import { benchBottle } from './lib.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const NS = sizes.length ? sizes : [50, 100, 200, 500];

async function time<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
}

async function main(): Promise<void> {
  const rows: string[][] = [['N', 'load', 'render', 'plan cold', 'plan no-op', 'status N', 'per bottle (no-op plan)']];
  for (const n of NS) {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'bottled-plan-scale-'));
    try {
      const dir = path.join(base, 'bottles.d');
      await fs.mkdir(dir);
      // The simulated engine of the planner's tests knows side:1 and agent:1.
      for (let i = 0; i < n; i++) await fs.writeFile(path.join(dir, `b${i}.yaml`), benchBottle(`b${i}`).replace('bottled/sidecar:local', 'side:1').replace('bottled/busybox:local', 'agent:1'));
      const paths = new StatePaths(path.join(base, 'state'));
      const [load, loadMs] = await time(() => loadSpecs(new DirSource(dir)));
      const rctx = { prefix: 'bottle', instance: 'scale', owner: OWNER, paths };
      const [desired, renderMs] = await time(() => new Map([...load.bottles.values()].map((d) => [d.metadata.name, renderBottle(d, rctx)])));
      const snap = empty();
      const invs = new Map<string, Inventory>();
      const fileHashes = new Map<string, string | undefined>();
      const input = () => ({
        load,
        desired,
        snapshot: snap,
        inventories: invs,
        fileHashes,
        secretDigest: () => undefined,
        opts: { prefix: 'bottle', instance: 'scale', owner: OWNER.id, subnetPool: '10.96.0.0/12', publishHost: '127.0.0.1', allowEmpty: false, hostSubnets: [] },
      });
      const [cold, coldMs] = await time(() => plan(input()));
      apply(cold, snap, invs, fileHashes);
      for (const c of snap.containers) c.state = 'running';
      const [noop, noopMs] = await time(() => plan(input()));
      const changes = noop.units.filter((u) => u.state !== 'in-sync').length;
      if (changes) throw new Error(`no-op plan at N=${n} has ${changes} units with changes: ${noop.units[0]!.actions.map((a) => `${a.kind} ${a.resource.name} ${a.cause}`).join("; ")}`);
      const index = new SnapshotIndex(snap, { instance: 'scale', owner: OWNER.id, inventories: invs, imageLabels: new Map(), adopt: false, declared: () => true });
      const [, statusMs] = await time(() => Promise.all(noop.units.map((u) => writeUnitStatus(paths, u, { unit: u.unit, ok: true, executed: 0 }, index, load))));
      rows.push([String(n), ms(loadMs), ms(renderMs), ms(coldMs), ms(noopMs), ms(statusMs), `${(noopMs / n).toFixed(3)} ms`]);
    } finally {
      await fs.rm(base, { recursive: true, force: true });
    }
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`).join('\n') + '\n');
}

function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

await main();
