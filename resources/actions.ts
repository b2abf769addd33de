// Every backend's actions, as one union: the one type list a new backend adds itself to (the
// runtime registry is resources/backends.ts).
import type { DockerAction } from './docker/actions.js';
import type { MachineAction } from './smolvm/actions.js';
import type { ServiceAction } from './swarm/actions.js';

export type BackendAction = DockerAction | MachineAction | ServiceAction;
