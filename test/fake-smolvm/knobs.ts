// FAKE-ONLY helpers for tests that drive the fake smolvm (test/fake-smolvm/smolvm).
// Nothing here exists in the real smolvm: these functions edit $SMOLVM_DATA_DIR/knobs.json
// and read $SMOLVM_DATA_DIR/calls.jsonl. See README.md in this folder.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the fake executable. */
export const FAKE_SMOLVM = fileURLToPath(new URL('./smolvm', import.meta.url));

export interface FailSpec {
  /** canonical subcommand: create|start|stop|delete|status|ls|exec|cp|data-dir, '--version' or '*' */
  subcommand: string;
  /** only calls whose --name/-n is this */
  name?: string;
  /** how many calls fail (default 1) */
  times?: number;
  exitCode?: number; // default 1
  stderr?: string;
  stdout?: string;
  /** sleep this long before failing */
  delayMs?: number;
}

export interface Knobs {
  /** what `smolvm --version` reports and which flags exist (< 1.8.0: no --label) */
  version?: string;
  /** per-subcommand delay; '*' is the default. start: boot time (holding vm.lock) */
  delayMs?: Record<string, number>;
  /** hold the DB write lock this long inside a subcommand's transaction */
  dbHoldMs?: Record<string, number>;
  /** how long a writer waits for the DB lock (real: 15000) */
  dbBusyTimeoutMs?: number;
  failNext?: FailSpec[];
  /** the world outside the DB: the machine's current VMM process is dead or its agent hung */
  machines?: Record<string, { vmm?: 'dead' | 'hung' }>;
  /** `start` fails as on a host without /dev/kvm */
  noKvm?: boolean;
}

export interface CallRecord {
  ts: string;
  pid: number;
  argv: string[];
  /** HOSTVAR -> value the fake saw in its own environment (null: unset) */
  secretEnv: Record<string, string | null>;
  exitCode: number;
  durationMs: number;
}

const knobsFile = (dataDir: string) => path.join(dataDir, 'knobs.json');

export function readKnobs(dataDir: string): Knobs {
  try {
    return JSON.parse(fs.readFileSync(knobsFile(dataDir), 'utf8')) as Knobs;
  } catch {
    return {};
  }
}

/** Replace knobs.json atomically (the fake may rewrite it too: it consumes failNext). */
export function writeKnobs(dataDir: string, knobs: Knobs): void {
  const tmp = `${knobsFile(dataDir)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(knobs, null, 2));
  fs.renameSync(tmp, knobsFile(dataDir));
}

export function updateKnobs(dataDir: string, fn: (k: Knobs) => void): Knobs {
  const k = readKnobs(dataDir);
  fn(k);
  writeKnobs(dataDir, k);
  return k;
}

export function failNext(dataDir: string, spec: FailSpec): void {
  updateKnobs(dataDir, (k) => {
    (k.failNext ??= []).push(spec);
  });
}

/** The machine's VMM process died (e.g. host crash): ls shows `stopped` with a stale pid. */
export function crashMachine(dataDir: string, name: string): void {
  updateKnobs(dataDir, (k) => {
    (k.machines ??= {})[name] = { vmm: 'dead' };
  });
}

/** The VMM is alive but its agent does not answer: ls shows `unreachable`. */
export function hangMachine(dataDir: string, name: string): void {
  updateKnobs(dataDir, (k) => {
    (k.machines ??= {})[name] = { vmm: 'hung' };
  });
}

/** Host reboot: every machine the DB believes to be running loses its VMM. */
export function hostReboot(dataDir: string): void {
  const dbDir = path.join(dataDir, 'fake-db');
  let files: string[] = [];
  try {
    files = fs.readdirSync(dbDir).filter((f) => f.endsWith('.json'));
  } catch {
    /* empty */
  }
  updateKnobs(dataDir, (k) => {
    for (const f of files) {
      const rec = JSON.parse(fs.readFileSync(path.join(dbDir, f), 'utf8')) as { name: string; state: string };
      if (rec.state === 'running' || rec.state === 'unreachable') (k.machines ??= {})[rec.name] = { vmm: 'dead' };
    }
  });
}

export function readCalls(dataDir: string): CallRecord[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(dataDir, 'calls.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CallRecord);
}

/** A fresh data dir for one test. */
export function makeDataDir(prefix = 'fake-smolvm-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
