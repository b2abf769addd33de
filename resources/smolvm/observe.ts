import fs from 'node:fs/promises';
import type { ObserveRequest } from '../../controller/backend.js';
import type { WorkloadObservation } from '../../controller/observed.js';
import { artifactStamp } from '../../controller/hash.js';
import type { SmolvmDriver } from './driver.js';
import { machineOf, type ObservedMachine, type SmolvmFacts } from './observe-types.js';

/** One `machine ls --json` (after a one-time version check); a failure holds only smolvm bottles. */
export async function observeMachines(smolvm: SmolvmDriver | undefined, req: ObserveRequest): Promise<WorkloadObservation> {
  const fromStats = new Map<string, string | undefined>();
  const stamps = Promise.all(
    req.planned.flatMap((d) => machineOf(d)?.from ?? []).map(async (f) => {
      const st = await fs.stat(f).catch(() => undefined);
      fromStats.set(f, st ? artifactStamp(st) : undefined);
    }),
  );
  const facts: SmolvmFacts = { fromStats };
  if (!smolvm) return { objects: [], error: 'no smolvm driver configured', facts };
  try {
    await smolvm.assertSupported();
    const machines = await smolvm.list();
    await stamps;
    // A machine without labels (smolvm < 1.8) can never be proven ours.
    const objects: ObservedMachine[] = machines.map((m) => ({ type: 'machine', name: m.name, labels: m.hasLabels ? m.labels : {}, labelled: m.hasLabels, machine: m }));
    return { objects, facts };
  } catch (e) {
    await stamps;
    return { objects: [], error: (e as Error).message, facts };
  }
}
