// The backends bottled knows, by the action targets each one executes. The core executor asks
// here and knows none of them by name; a new backend adds its step function to this table.
import type { ExecContext, Save, StepOutcome } from '../controller/exec-context.js';
import type { Inventory } from '../state/inventory.js';
import type { BackendAction } from './actions.js';
import { dockerStep } from './docker/execute.js';
import { machineStep } from './smolvm/execute.js';

export async function backendStep(a: BackendAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  switch (a.on) {
    case 'network':
    case 'container':
    case 'file':
      return dockerStep(a, inv, ctx, save);
    case 'machine':
      return machineStep(a, inv, ctx, save);
  }
}
