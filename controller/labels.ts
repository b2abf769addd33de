import type { OwnerIdentity } from '../state/owner.js';

/** Ownership labels (spec: "Ownership labels"). One helper names them all. */
export const L = {
  managedBy: 'bottled.managed-by',
  instance: 'bottled.instance',
  kind: 'bottled.kind',
  bottle: 'bottled.bottle',
  role: 'bottled.role',
  component: 'bottled.component',
  specHash: 'bottled.spec-hash',
  hashVersion: 'bottled.hash-version',
  /** The state directory that created it (owner.ts): what proves a resource is this reconciler's. */
  owner: 'bottled.owner',
  /** Where that state directory was, for messages only. */
  ownerDir: 'bottled.owner-dir',
  /** Random per container create: a container made from a committed bottle image inherits it, so it never matches. */
  createId: 'bottled.create-id',
  /** Hash of the create-time configuration without secret values: proves "unchanged" when the HMAC key is gone. */
  configHash: 'bottled.config-hash',
} as const;

export const HASH_VERSION = '1';

export function ownershipLabels(
  instance: string,
  owner: OwnerIdentity,
  kind: 'bottle' | 'shared',
  unitName: string,
  role: string,
  component?: string,
  user: Record<string, string> = {},
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(user)) labels[`bottled.user.${k}`] = v;
  Object.assign(labels, {
    [L.managedBy]: 'bottled',
    [L.instance]: instance,
    [L.kind]: kind,
    [L.bottle]: unitName,
    [L.role]: role,
    [L.hashVersion]: HASH_VERSION,
    [L.owner]: owner.id,
    [L.ownerDir]: owner.dir,
  });
  if (component) labels[L.component] = component;
  return labels;
}

/**
 * The labels that are part of a resource's configuration hash. Who owns a resource is not its
 * configuration: adopting it, or moving the state directory, must never recreate it (and hashes
 * stay what they were before bottled had owner labels).
 */
export function hashedLabels(labels: Record<string, string>): Record<string, string> {
  const { [L.owner]: _owner, [L.ownerDir]: _dir, ...rest } = labels;
  return rest;
}
