/**
 * What every planned action has, whichever backend carries it out. Backends declare their own
 * actions on top of this (resources/<backend>/actions.ts); the executor dispatches on `on`.
 */
export interface ActionBase {
  id: number;
  cause: string;
  /** Ids of the actions this one waits for (dependency order). */
  after: number[];
  /** Printed as part of the action before it (the start that follows a create). */
  implicit?: boolean;
}

export interface ResourceRef<T extends string = string> {
  type: T;
  name: string;
}

/** Inventory entry made by adopt. */
export interface AdoptPayload {
  /** `network`, `container`, or an agent backend's object type. */
  type: string;
  role: string;
  specHash?: string;
  delivered?: Record<string, string>;
  /** The resource's owner label when it is taken over from another state directory (`--adopt`). */
  owner?: string;
  /** Docker's ID of what is adopted. */
  id?: string;
  /** Proven equal to `specHash` though its label says this (a new secret HMAC key). */
  labelHash?: string;
  applied?: Record<string, unknown>;
}

/** Taking a resource into the inventory: no backend call, the core executor does it. */
export interface AdoptAction extends ActionBase {
  on: 'inventory';
  kind: 'adopt';
  resource: ResourceRef;
  adopt: AdoptPayload;
}

/** Omit over each member of a union (plain Omit collapses a discriminated union). */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
