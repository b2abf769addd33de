import os from 'node:os';
import type { BaselineResult } from './baselines.js';
import { mean, type Measure } from './lib.js';
import { mb, ms, ratio, table } from './table.js';

/** The targets of the default run (checked at 60 bottles; at 10 with --quick). */
const TARGETS = { noopCalls: 5, noopPassMs: 100, noopWallMs: 1000, rssMb: 150 };

/** One measured pass of a bottled series. */
export interface Row {
  n: number;
  step: string;
  m: Measure;
}

/** In-process timings of the two big pieces of a no-op pass (first call = cold JIT, like a one-shot process). */
export interface NoopPieces {
  n: number;
  snapshotFirstMs: number;
  snapshotWarmMs: number;
  loadFirstMs: number;
  loadWarmMs: number;
}

function stepsMean(steps: Map<string, number[]> | undefined, key: string): number {
  return mean(steps?.get(key) ?? []);
}

/** What a default (or --quick) run measured, for the report. */
export interface BenchReport {
  engine: string;
  load: string;
  rows: Row[];
  fl: BaselineResult & { runsMs: number[] };
  cli: BaselineResult;
  totalS: number;
  pieces?: NoopPieces;
  quick: boolean;
  json: boolean;
}

/** The tables (or, with --json, the document) of a default run, on stdout. */
export function report(r: BenchReport): void {
  const { rows, fl, cli, pieces } = r;
  const find = (n: number, prefix: string) => rows.find((x) => x.n === n && x.step.startsWith(prefix))?.m;
  const cold10 = find(10, 'cold')!;
  const tn = r.quick ? 10 : 60;
  const noopT = find(tn, 'no-op')!;
  const rssAtT = Math.max(...rows.filter((x) => x.n === tn).map((x) => x.m.rssKb));
  const targets = [
    { check: `no-op pass @${tn}: Engine API calls`, measured: noopT.calls, target: `<= ${TARGETS.noopCalls}`, met: noopT.calls <= TARGETS.noopCalls, unit: '' },
    { check: `no-op pass @${tn}: passMs (median; best ${ms(noopT.best?.passMs ?? NaN)})`, measured: noopT.passMs, target: `< ${TARGETS.noopPassMs} ms`, met: noopT.passMs < TARGETS.noopPassMs, unit: ' ms' },
    { check: `no-op reconcile --once @${tn}: process wall (median; best ${ms(noopT.best?.wallMs ?? NaN)})`, measured: noopT.wallMs, target: `< ${TARGETS.noopWallMs} ms`, met: noopT.wallMs < TARGETS.noopWallMs, unit: ' ms' },
    { check: `peak RSS, passes @${tn} bottles`, measured: rssAtT / 1024, target: `< ${TARGETS.rssMb} MB`, met: rssAtT / 1024 < TARGETS.rssMb, unit: ' MB' },
  ];
  const stepKeys = ['create bottle net', 'create egress net', 'create sidecar', 'connect sidecar', 'start sidecar', 'create agent', 'start agent'];
  const removeKeys = ['remove agent', 'remove sidecar', 'remove bottle net', 'remove egress net'];
  const cold50 = find(50, 'cold');
  const down10 = find(10, 'teardown');
  const down50 = find(50, 'teardown');

  if (r.json) {
    const r1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
    const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
    const m = (x: Measure) => ({ wallMs: Math.round(x.wallMs), passMs: x.passMs, ...(x.best ? { bestWallMs: Math.round(x.best.wallMs), bestPassMs: x.best.passMs } : {}), calls: x.calls, selfReportedCalls: x.selfCalls, maxRssKb: x.rssKb, executed: x.executed, bottles: x.bottles });
    const out = {
      engine: r.engine,
      cpus: os.cpus().length,
      loadAverageAtStart: r.load,
      node: process.version,
      quick: r.quick,
      totalSeconds: Math.round(r.totalS),
      passes: rows.map((x) => ({ n: x.n, step: x.step, ...m(x.m) })),
      baselines: {
        n: 10,
        bottled: m(cold10),
        floor: { wallMs: Math.round(fl.wallMs), runsMs: fl.runsMs.map(Math.round), calls: fl.calls },
        oldLauncher: { wallMs: Math.round(cli.wallMs), calls: cli.calls },
        ratios: {
          bottledWallOverFloor: r2(cold10.wallMs / fl.wallMs),
          bottledPassOverFloor: r2(cold10.passMs / fl.wallMs),
          bottledWallOverOldLauncher: r2(cold10.wallMs / cli.wallMs),
          bottledPassOverOldLauncher: r2(cold10.passMs / cli.wallMs),
        },
      },
      stepMeansMs: Object.fromEntries([
        ...stepKeys.map((k) => [k, { floor: r1(stepsMean(fl.steps, k)), oldLauncher: r1(stepsMean(cli.steps, k)), bottled10: r1(stepsMean(cold10.steps, k)), bottled50: r1(stepsMean(cold50?.steps, k)) }]),
        ...removeKeys.map((k) => [k, { bottled10: r1(stepsMean(down10?.steps, k)), bottled50: r1(stepsMean(down50?.steps, k)) }]),
      ]),
      noopPieces: pieces ? Object.fromEntries(Object.entries(pieces).map(([k, v]) => [k, r1(v)])) : null,
      targets: targets.map(({ unit: _u, measured, ...t }) => ({ ...t, measured: r1(measured) })),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }

  const targetFor = (x: Row): [string, string] => {
    if (x.n !== tn) return ['', ''];
    if (x.step.startsWith('no-op')) {
      const missed = [
        x.m.calls > TARGETS.noopCalls && 'calls',
        x.m.passMs >= TARGETS.noopPassMs && 'pass ms',
        x.m.wallMs >= TARGETS.noopWallMs && 'wall ms',
        x.m.rssKb / 1024 >= TARGETS.rssMb && 'RSS',
      ].filter(Boolean);
      return [`<=${TARGETS.noopCalls} calls, <${TARGETS.noopPassMs} ms pass, <${TARGETS.noopWallMs} ms wall, <${TARGETS.rssMb} MB`, missed.length ? `NO (${missed.join(', ')})` : 'yes'];
    }
    return [`<${TARGETS.rssMb} MB`, x.m.rssKb / 1024 < TARGETS.rssMb ? 'yes' : 'NO'];
  };
  const out: string[] = [];
  out.push(`bottled bench: engine ${r.engine}, ${os.cpus().length} CPUs, node ${process.version}${r.quick ? ', --quick' : ''}; every figure through the recording socket proxy; total ${Math.round(r.totalS)} s; load average at start ${r.load}`, '');
  out.push(
    table(
      '1. bottled reconcile --once (one process per pass; calls counted at the socket)',
      ['pass', 'N', 'wall ms', 'pass ms', 'wall-pass ms', 'API calls', 'calls/bottle', 'peak RSS MB', 'actions', 'target', 'met'],
      rows.map((x) => [x.step, String(x.n), ms(x.m.wallMs), ms(x.m.passMs), ms(x.m.wallMs - x.m.passMs), String(x.m.calls), (x.m.calls / x.n).toFixed(1), mb(x.m.rssKb), String(x.m.executed), ...targetFor(x)]),
    ),
  );
  out.push(
    table(
      '2. cold converge, N=10, same topology',
      ['method', 'wall ms', 'API calls', 'calls/bottle', 'bottled wall / this', 'bottled pass / this'],
      [
        ['bottled reconcile --once (process wall)', ms(cold10.wallMs), String(cold10.calls), (cold10.calls / 10).toFixed(1), '1.00x', ratio(cold10.passMs, cold10.wallMs)],
        ['bottled (its passMs)', ms(cold10.passMs), '', '', ratio(cold10.wallMs, cold10.passMs), '1.00x'],
        [`floor: dockerode, 7 calls/bottle, 4 parallel (mean of ${fl.runsMs.map(ms).join(', ')})`, ms(fl.wallMs), String(fl.calls), (fl.calls / 10).toFixed(1), ratio(cold10.wallMs, fl.wallMs), ratio(cold10.passMs, fl.wallMs)],
        ['old launcher: docker CLI per step, sequential', ms(cli.wallMs), String(cli.calls), (cli.calls / 10).toFixed(1), ratio(cold10.wallMs, cli.wallMs), ratio(cold10.passMs, cli.wallMs)],
      ],
    ),
  );
  out.push(
    table(
      '   mean ms per step in the cold converge (bottled: gap between its per-action log lines, incl. its own state writes and readiness waits)',
      ['step', 'floor', 'old launcher', 'bottled N=10', ...(cold50 ? ['bottled N=50'] : [])],
      [
        ...stepKeys.map((k) => [k, ms(stepsMean(fl.steps, k)), ms(stepsMean(cli.steps, k)), ms(stepsMean(cold10.steps, k)), ...(cold50 ? [ms(stepsMean(cold50.steps, k))] : [])]),
        ...removeKeys.map((k) => [`teardown: ${k}`, '', '', ms(stepsMean(down10?.steps, k)), ...(cold50 ? [ms(stepsMean(down50?.steps, k))] : [])]),
      ],
    ),
  );
  out.push('   (-: the first action of each bottle has no reference point in the log: queue wait)', '');
  if (pieces) {
    const noopN = find(pieces.n, 'no-op')!;
    out.push(
      table(
        `   where a no-op pass @${pieces.n} goes (bottled's own snapshot() and loadSpecs() timed in the bench process; first call = cold JIT)`,
        ['piece', 'first ms', 'warm ms'],
        [
          ['process start + imports + exit (wall - passMs)', ms(noopN.wallMs - noopN.passMs), ''],
          ['whole pass (passMs)', ms(noopN.passMs), ''],
          ['  snapshot: list networks/containers/images', ms(pieces.snapshotFirstMs), ms(pieces.snapshotWarmMs)],
          [`  loadSpecs: ${pieces.n} spec files`, ms(pieces.loadFirstMs), ms(pieces.loadWarmMs)],
        ],
      ),
    );
  }
  out.push(
    table(
      `3. targets${r.quick ? ' (--quick: checked at 10 bottles, the real targets are at 60)' : ''}`,
      ['check', 'measured', 'target', 'met'],
      targets.map((t) => [t.check, `${t.unit === ' MB' ? t.measured.toFixed(1) : Math.round(t.measured)}${t.unit}`, t.target, t.met ? 'yes' : 'NO']),
    ),
  );
  process.stdout.write(out.join('\n'));
}
