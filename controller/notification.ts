// What --notify sends: a bottle's Ready transition, or what a pass says as a whole.
export interface Notification {
  /** A bottle's Ready condition: not-ready, recovered. A pass: held, released (the hold ended), applied (a new revision). */
  event: 'not-ready' | 'recovered' | 'held' | 'released' | 'applied';
  /** The bottle, for a bottle's own event. */
  bottle?: string;
  kind?: 'bottle' | 'shared';
  /** The bottles a pass hold holds. */
  bottles?: string[];
  reason: string;
  message: string;
  revision?: string;
  time: string;
}
