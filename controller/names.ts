/** Resource names of the docker topology (bottle-spec-v1 "Docker backend topology"). */
export const names = {
  bottleNetwork: (prefix: string, bottle: string) => `${prefix}-${bottle}-net`,
  egressNetwork: (prefix: string, bottle: string) => `${prefix}-${bottle}-egress`,
  sidecar: (prefix: string, bottle: string, sidecar: string) => `${prefix}-${bottle}-${sidecar}`,
  agent: (prefix: string, bottle: string) => `${prefix}-${bottle}`,
  shared: (prefix: string, name: string) => `${prefix}-shared-${name}`,
  sharedNetwork: (prefix: string, name: string) => `${prefix}-shared-${name}-net`,
};
