import type { State } from '../platform/state.js';
import type { Color } from '../platform/upstream.js';

export type { Color };
export const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');

export interface ColorSlot {
  image: string;
  imageId: string;
  /** The name nginx reaches it by on the project network. */
  host: string;
  /** The container, when there is one. */
  container: string | null;
  since: string;
  /** `compose`: the compose web service's own container (the colour before the first cutover). */
  managedBy: 'compose' | 'opskit';
  /** On Swarm: the reference its service runs (the image pinned to its registry digest). */
  ref?: string;
}

export interface CutoverState {
  live: Color;
  colors: Partial<Record<Color, ColorSlot>>;
  /** The old colour is stopped after this (by the next opskit run, or `cutover --finalize`). */
  keepOldUntil: string | null;
  history: Array<{
    at: string;
    action: 'cutover' | 'rollback' | 'finalize';
    from: Color;
    to: Color;
    image: string;
    switchMs: number | null;
  }>;
}

export function cutoverState(state: State): CutoverState | undefined {
  return state.cutover as CutoverState | undefined;
}

/**
 * Pure: the colours as they stand. Before the first cutover the live colour is blue, served by the
 * compose web service's container (as `opskit deploy` left it).
 */
export function currentColors(
  state: State,
  webService: string,
  webContainer: { id: string } | undefined,
): CutoverState | undefined {
  const existing = cutoverState(state);
  if (existing) return existing;
  const deployed = state.deploy?.current;
  if (!deployed) return undefined;
  return {
    live: 'blue',
    colors: {
      blue: {
        image: deployed.image,
        imageId: deployed.imageId,
        host: webService,
        container: webContainer?.id ?? null,
        since: deployed.deployedAt,
        managedBy: 'compose',
      },
    },
    keepOldUntil: null,
    history: [],
  };
}

/**
 * The container name of an opskit-managed colour, also its DNS name on the project network. Each start
 * gets its own suffix, so the new container runs beside the one it replaces until after the switch.
 */
export function colorContainerName(project: string, webService: string, color: Color, suffix: string): string {
  return `${project}_${webService}_${color}_${suffix}`;
}

const HISTORY = 50;

/** Pure: the state after `to` became live. */
export function recordSwitch(
  colors: CutoverState,
  change: {
    action: 'cutover' | 'rollback';
    to: Color;
    slot?: ColorSlot;
    at: string;
    switchMs: number;
    keepOldUntil: string | null;
  },
): CutoverState {
  const slots = { ...colors.colors, ...(change.slot ? { [change.to]: change.slot } : {}) };
  return {
    live: change.to,
    colors: slots,
    keepOldUntil: change.keepOldUntil,
    history: [
      {
        at: change.at,
        action: change.action,
        from: colors.live,
        to: change.to,
        image: slots[change.to]!.image,
        switchMs: Math.round(change.switchMs),
      },
      ...colors.history,
    ].slice(0, HISTORY),
  };
}

/** Pure: the idle colour stopped (its image kept, so a rollback can start it again). */
export function recordFinalize(colors: CutoverState, at: string): CutoverState {
  const idle = other(colors.live);
  const slot = colors.colors[idle];
  if (!slot) return colors;
  return {
    ...colors,
    colors: { ...colors.colors, [idle]: { ...slot, container: null } },
    keepOldUntil: null,
    history: [
      { at, action: 'finalize' as const, from: colors.live, to: colors.live, image: slot.image, switchMs: null },
      ...colors.history,
    ].slice(0, HISTORY),
  };
}

/** Pure: is the keep-old deadline past? */
export function oldColorExpired(colors: CutoverState, now: Date): boolean {
  return colors.keepOldUntil !== null && new Date(colors.keepOldUntil).getTime() <= now.getTime();
}
