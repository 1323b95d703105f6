import type { SwarmNode } from '../../src/adapters/swarm.js';

/** A ready, active manager node of the lab as the adapter reads it; tests change what they need. */
export const swarmNode = (over: Partial<SwarmNode> = {}): SwarmNode => ({
  id: 'n1',
  hostname: 'okl1',
  role: 'manager',
  availability: 'active',
  state: 'ready',
  address: '10.231.0.11',
  leader: true,
  labels: { 'opskit.edge': 'true' },
  engineVersion: '26.1.5',
  ...over,
});
