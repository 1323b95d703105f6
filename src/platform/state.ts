import type { FsAdapter } from '../adapters/fs.js';
import { ConfigError } from '../errors.js';

export interface DeployRecord {
  image: string;
  imageId: string;
  deployedAt: string;
  migrationsApplied: string[];
  durationMs: number;
}

/** `.opskit/state.json`: what runs where. Written atomically; later issues add the colours. */
export interface State {
  schemaVersion: 1;
  deploy?: {
    current: DeployRecord;
    previous?: DeployRecord;
    history: DeployRecord[];
  };
  [key: string]: unknown;
}

export const emptyState = (): State => ({ schemaVersion: 1 });

export async function readState(fs: FsAdapter, file: string): Promise<State> {
  const text = await fs.readText(file);
  if (text === undefined) return emptyState();
  try {
    const state = JSON.parse(text) as State;
    if (state.schemaVersion !== 1) throw new Error(`schemaVersion ${String(state.schemaVersion)}`);
    return state;
  } catch (error) {
    throw new ConfigError(`the state file ${file} is unreadable: ${(error as Error).message}`, {
      code: 'E_STATE_UNREADABLE',
      hint: 'restore it from the audit log and history, or move it aside to start over',
    });
  }
}

export async function writeState(fs: FsAdapter, file: string, state: State): Promise<void> {
  await fs.writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}

const HISTORY = 20;

/** Pure: the state after a deploy of `record`. */
export function recordDeploy(state: State, record: DeployRecord): State {
  const previous = state.deploy?.current;
  return {
    ...state,
    deploy: {
      current: record,
      ...(previous && previous.imageId !== record.imageId
        ? { previous }
        : state.deploy?.previous
          ? { previous: state.deploy.previous }
          : {}),
      history: [record, ...(state.deploy?.history ?? [])].slice(0, HISTORY),
    },
  };
}
