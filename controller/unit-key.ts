/**
 * The one place that converts between the three names of a unit: its unit key (the state-dir,
 * status and queue key: `<bottle>` or `shared.<name>`), its document key in the loader
 * (`Bottle/<name>`, `SharedSidecar/<name>`) and its ownership labels (`bottled.kind`,
 * `bottled.bottle`). Dots never occur in names, so a shared key cannot clash with a bottle.
 */
export type UnitKey = string & { readonly __unitKey?: never };
export type UnitKind = 'bottle' | 'shared';

const SHARED = 'shared.';

export const unitKey = {
  bottle: (name: string): UnitKey => name,
  shared: (name: string): UnitKey => `${SHARED}${name}`,
  of: (kind: UnitKind, name: string): UnitKey => (kind === 'shared' ? `${SHARED}${name}` : name),
  kind: (unit: UnitKey): UnitKind => (unit.startsWith(SHARED) ? 'shared' : 'bottle'),
  name: (unit: UnitKey): string => (unit.startsWith(SHARED) ? unit.slice(SHARED.length) : unit),
  /** `Bottle/<name>` / `SharedSidecar/<name>` (the loader's `held` map). */
  fromDocKey: (key: string): UnitKey => (key.startsWith('SharedSidecar/') ? `${SHARED}${key.slice('SharedSidecar/'.length)}` : key.slice('Bottle/'.length)),
  toDocKey: (unit: UnitKey): string => (unit.startsWith(SHARED) ? `SharedSidecar/${unit.slice(SHARED.length)}` : `Bottle/${unit}`),
  /** The unit a resource's labels name (not proof of ownership: see ownership.ts). */
  fromLabels: (labels: Record<string, string>): UnitKey | undefined => {
    const name = labels['bottled.bottle'];
    if (!name) return undefined;
    if (labels['bottled.kind'] === 'shared') return `${SHARED}${name}`;
    return labels['bottled.kind'] === 'bottle' ? name : undefined;
  },
};
