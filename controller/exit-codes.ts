/** Exit codes of the command-line contract (design/architecture.md). */
export const EXIT = { ok: 0, error: 1, changes: 2, invalid: 2, locked: 3 } as const;
