// The shape issue 8 set down, held by a test so it stays: no import cycle, no oversized module,
// a pure planner that loads no driver, and a core that names no agent backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { importCycles, importsOf, ROOT, runtimeClosure, sourceFiles } from '../helpers/imports.js';

const rel = (f: string) => path.relative(ROOT, f);

test('no source module imports itself in a circle', () => {
  assert.deepEqual(importCycles(sourceFiles()), []);
});

test('no source file outside test/ is over 450 lines', () => {
  const big = sourceFiles()
    .map((f) => [rel(f), (fs.readFileSync(f, 'utf8').match(/\n/g) ?? []).length] as const)
    .filter(([, n]) => n > 450);
  assert.deepEqual(big, []);
});

test('the planner loads no driver, no Engine client and no process runner', () => {
  const closure = [...runtimeClosure('controller/plan.ts')];
  const drivers = closure.filter((f) => /\/resources\/[^/]+\/(driver|execute|events|runtime|observe)\.ts$/.test(f) || ['dockerode', 'execa', 'chokidar', 'pino'].includes(f));
  assert.deepEqual(drivers.map((f) => (f.startsWith('/') ? rel(f) : f)), []);
});

test('the generic core reaches an agent backend only through the registries', () => {
  const core = sourceFiles().filter((f) => rel(f).startsWith('controller/'));
  const direct = core.flatMap((f) => importsOf(f).filter((i) => /\/resources\/smolvm\//.test(i.target)).map((i) => `${rel(f)} -> ${rel(i.target)}`));
  assert.deepEqual(direct, []);
});
