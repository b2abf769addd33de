import type { DesiredFile, DesiredWorkload, PlaceholderRef } from '../../controller/desired.js';
import { HASH_VERSION, hashedLabels } from '../../controller/labels.js';

/** The agent of a smolvm bottle: a microVM behind the bottle's sidecars. */
export interface DesiredMachine extends DesiredWorkload {
  backend: 'smolvm';
  type: 'machine';
  name: string;
  image?: string;
  /** Absolute path of a .smolmachine (`agent.from`). */
  from?: string;
  command?: string[];
  env: Record<string, string>; // may hold placeholders
  secretEnv: Record<string, string>;
  cpus?: number;
  memMiB?: number;
  labels: Record<string, string>;
  files: DesiredFile[];
  /** Sidecar containers the machine may reach (`--allow-cidr <ip>/32`); they run first. */
  waitFor: string[];
  placeholders: PlaceholderRef[];
}

/** Create-time settings of a smolvm machine: a change means stop, delete, create, start. */
export function machineConfig(
  m: DesiredMachine,
  resolvedEnv: Record<string, string>,
  secretDigests: Record<string, string>,
  allowCidrs: string[],
  fromStat: string | undefined,
): Record<string, unknown> {
  return {
    hashVersion: HASH_VERSION,
    image: m.image ?? null,
    from: m.from ?? null,
    fromArtifact: fromStat ?? null,
    command: m.command ?? null,
    env: resolvedEnv,
    secretEnv: secretDigests,
    net: true,
    allowCidrs: [...allowCidrs].sort(),
    cpus: m.cpus ?? null,
    memMiB: m.memMiB ?? null,
    files: m.files.filter((f) => f.onChange.type === 'recreate').map((f) => ({ path: f.path, content: f.hash })),
    labels: hashedLabels(m.labels),
  };
}

