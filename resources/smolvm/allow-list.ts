/**
 * The addresses a machine may reach (`--allow-cidr`): each of its sidecars, and the publish
 * host when a sidecar publishes ports. The planner and the executor both build it here.
 */
export function machineAllowList(sidecarIps: string[], published: boolean, publishHost: string): string[] {
  return [...sidecarIps.map((ip) => `${ip}/32`), ...(published ? [`${publishHost}/32`] : [])];
}
