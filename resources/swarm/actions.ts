import type { ActionBase, ResourceRef } from '../../controller/action-base.js';
import type { ConfigRef, DesiredService, SecretRef } from './desired.js';

export interface ServicePayload {
  desired: DesiredService;
  hash: string;
  config: Record<string, unknown>;
  /** The Swarm configs its files are, created by the step if missing. */
  configs: ConfigRef[];
  /** The Swarm secrets its secretEnv values are, created by the step if missing. */
  secrets: SecretRef[];
  /** A SharedSidecar: the overlays of the bottles that use it, which it keeps across its own updates. */
  joins?: { overlay: string; aliases: string[] }[];
}

type S = ActionBase & { on: 'service' };

export type ServiceAction =
  /** create, or update in place: Swarm replaces the task (start-first) when the spec changes. */
  | (S & { kind: 'create' | 'update'; resource: ResourceRef<'service'>; service: ServicePayload })
  | (S & { kind: 'remove'; resource: ResourceRef<'service'> })
  /** A SharedSidecar's service joins (leaves) a bottle's overlay under its alias: Swarm replaces its task, start-first. */
  | (S & { kind: 'join' | 'leave'; resource: ResourceRef<'service'>; overlay: string; aliases: string[] })
  /** A config no service of the bottle uses any more (files are configs; configs are immutable). */
  | (S & { kind: 'remove'; resource: ResourceRef<'config'> })
  /** A secret no service of the bottle uses any more (its value changed, or the variable went). */
  | (S & { kind: 'remove'; resource: ResourceRef<'secret'> });
