import type { BuildxBinary } from '../adapters/buildx.js';
import type { BuildSecretSpec } from '../config/build-secrets.js';
import { OperationError } from '../errors.js';
import type { Sensitive } from '../sensitive.js';
import { type BuildProgress, describeStep } from './progress.js';

/** What a build reports, whichever builder made it, and the plan both builders carry out. */

export interface BuildResult {
  imageId: string;
  tags: string[];
  sizeBytes: number;
  durationMs: number;
  revision: string;
  /** BuildKit (docker buildx) or the Engine API's classic builder. */
  builder: 'buildkit' | 'classic';
  steps: number;
  /** Steps the cache can serve (not FROM, not a global ARG) and how many it did. */
  cacheableSteps: number;
  cachedSteps: number;
  contextFiles: number;
  stages: Array<{ name: string | null; from: string; sizeBytes: number | null }>;
  /** Multi-stage: the final image against the first (builder) stage. */
  finalVsBuilder: { finalBytes: number; builderBytes: number; ratio: number } | null;
  buildArgs: Record<string, string>;
  /** Build secrets: their ids and where they come from (`id=pip,src=/path`), never their values. */
  secrets: string[];
  dryRun?: {
    call: string;
    /** BuildKit: the buildx argv, and the variables added to its environment (values ***). */
    argv?: string[];
    env?: Record<string, string>;
    /** Classic: the Engine API parameters. */
    parameters?: Record<string, unknown>;
    context: string;
    files: string[];
  };
}

export interface BuildPlan {
  base: Pick<BuildResult, 'tags' | 'revision' | 'builder' | 'contextFiles' | 'buildArgs' | 'secrets'>;
  contextDir: string;
  dockerfilePath: string;
  dockerfileText: string;
  files: string[];
  target: string | undefined;
  noCache: boolean;
  imageName: string;
  buildArgs: Record<string, string | Sensitive>;
  secrets: BuildSecretSpec[];
  secretValues: Record<string, Sensitive>;
  labels: Record<string, string>;
  /** How buildx is run (BuildKit builds). */
  binary: BuildxBinary;
}

export const notBuilt = {
  imageId: '',
  sizeBytes: 0,
  durationMs: 0,
  steps: 0,
  cacheableSteps: 0,
  cachedSteps: 0,
  stages: [],
  finalVsBuilder: null,
};

/** Pure: the counts of the result, from the folded progress. */
export function stepCounts(progress: BuildProgress): Pick<BuildResult, 'steps' | 'cacheableSteps' | 'cachedSteps'> {
  // BuildKit reports a FROM of a local image as cached too: only the cacheable steps count as hits.
  const cacheable = progress.steps.filter((s) => s.stage >= 0 && !/^FROM\s/i.test(s.instruction));
  return {
    steps: progress.steps.length,
    cacheableSteps: cacheable.length,
    cachedSteps: cacheable.filter((s) => s.cached).length,
  };
}

export function finalVsBuilder(finalBytes: number, builderBytes: number | null): BuildResult['finalVsBuilder'] {
  return builderBytes
    ? { finalBytes, builderBytes, ratio: Math.round((finalBytes / builderBytes) * 1000) / 1000 }
    : null;
}

export function buildFailed(
  step: { fail(text?: string): void },
  failing: BuildProgress['steps'][number] | undefined,
  error: string,
  tail: string[],
  options: { code?: string; message?: string; hint?: string } = {},
): never {
  const where = failing ? ` at ${describeStep(failing)}` : '';
  step.fail(`build failed${where}`);
  throw new OperationError(
    options.code ?? 'E_BUILD_FAILED',
    `${options.message ?? `build failed${where}: ${error}`}\n--- last ${tail.length} lines of build output ---\n${tail.join('\n')}`,
    {
      hint: options.hint ?? 'fix the failing step; --verbose shows the whole build log',
      details: { failedStep: failing ?? null, logTail: tail },
    },
  );
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
