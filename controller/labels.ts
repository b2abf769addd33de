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
} as const;

export const HASH_VERSION = '1';

export function ownershipLabels(
  instance: string,
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
  });
  if (component) labels[L.component] = component;
  return labels;
}

/** Invariant 1: only resources with our manager label and our instance are ever changed. */
export function isOurs(labels: Record<string, string> | undefined, instance: string): boolean {
  return !!labels && labels[L.managedBy] === 'bottled' && labels[L.instance] === instance;
}
