import type { BuildEvent } from '../adapters/docker.js';
import type { DockerfileStage } from './context.js';
import type { RawJsonItem } from './rawjson.js';

export interface BuildStep {
  index: number;
  total: number;
  instruction: string;
  stage: number;
  cached: boolean;
  /** The image this step produced (short id), once it has (the classic builder). */
  imageId?: string;
  /** BuildKit's name for the step, `[builder 2/5]` (its index and total count within the stage). */
  label?: string;
}

export interface BuildStage {
  index: number;
  name: string | undefined;
  from: string;
}

export interface BuildProgress {
  steps: BuildStep[];
  stages: BuildStage[];
  /** Output lines, for --verbose and for the tail of a failure (BuildKit: the last LOG_LIMIT of them). */
  log: string[];
  /** How many lines the log has had in all: the lines an event added are the last (after - before). */
  logCount: number;
  imageId: string | undefined;
  error: string | undefined;
  /** BuildKit: every vertex seen, by digest. */
  vertexes: Record<string, VertexState>;
  /** BuildKit: the first vertex that failed (not one cancelled because another failed). */
  failure: { vertex: string; name: string; step: number | undefined; error: string } | undefined;
}

export interface VertexState {
  name: string;
  /** Its index in `steps`, when it is a Dockerfile step that has started. */
  step: number | undefined;
  /** Its last output lines, and the unfinished one. */
  tail: string[];
  partial: string;
}

export const LOG_LIMIT = 1000;
export const TAIL_LINES = 30;

export const emptyProgress = (stages: readonly DockerfileStage[] = []): BuildProgress => ({
  steps: [],
  stages: stages.map((s) => ({ index: s.index, name: s.name, from: s.from })),
  log: [],
  logCount: 0,
  imageId: undefined,
  error: undefined,
  vertexes: {},
  failure: undefined,
});

/**
 * Pure: folds one event of the legacy builder's stream into the progress. The lines it reads:
 * `Step 4/11 : RUN ...`, ` ---> Using cache`, ` ---> 1a2b3c4d5e6f`, `Successfully built 1a2b...`.
 */
export function reduceBuildEvent(progress: BuildProgress, event: BuildEvent): BuildProgress {
  const next: BuildProgress = {
    ...progress,
    steps: [...progress.steps],
    stages: [...progress.stages],
    log: [...progress.log],
  };
  if (event.error || event.errorDetail) {
    next.error = event.errorDetail?.message ?? event.error;
    next.log.push(next.error ?? '');
    next.logCount++;
    return next;
  }
  if (event.aux?.ID) next.imageId = event.aux.ID;
  const text = event.stream ?? event.status;
  if (!text) return next;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    next.log.push(line.replace(/\r$/, ''));
    next.logCount++;
    const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
    if (step) {
      const instruction = step[3]!.trim();
      const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(instruction);
      if (from) next.stages.push({ index: next.stages.length, name: from[2], from: from[1]! });
      // Steps before the first FROM (global ARGs) belong to no stage: -1.
      next.steps.push({
        index: Number(step[1]),
        total: Number(step[2]),
        instruction,
        stage: next.stages.length - 1,
        cached: false,
      });
      continue;
    }
    const current = next.steps[next.steps.length - 1];
    if (!current) continue;
    if (/^ ---> Using cache$/.test(line)) next.steps[next.steps.length - 1] = { ...current, cached: true };
    const produced = /^ ---> ([0-9a-f]{12,64})$/.exec(line);
    if (produced) next.steps[next.steps.length - 1] = { ...current, imageId: produced[1]! };
  }
  return next;
}

/** Pure: the id of the last image each stage produced (its final layer), by stage index. */
export function stageImages(progress: BuildProgress): Array<{ stage: BuildStage; imageId: string | undefined }> {
  return progress.stages.map((stage) => {
    const steps = progress.steps.filter((s) => s.stage === stage.index && s.imageId);
    return { stage, imageId: steps[steps.length - 1]?.imageId };
  });
}

export function describeStep(step: BuildStep): string {
  const instruction = step.instruction.length > 100 ? `${step.instruction.slice(0, 97)}...` : step.instruction;
  return step.label ? `${step.label} ${instruction}` : `Step ${step.index}/${step.total}: ${instruction}`;
}

/** BuildKit's SolveStatus, the parts opskit reads (github.com/moby/buildkit client/graph.go). */
interface SolveStatus {
  vertexes?: Array<{
    digest?: string;
    name?: string;
    started?: string;
    completed?: string;
    cached?: boolean;
    error?: string;
  }>;
  logs?: Array<{ vertex?: string; stream?: number; data?: string }>;
  warnings?: Array<{ vertex?: string; short?: string }>;
}

/** `[builder 2/5] RUN ...`, `[3/5] COPY ...`, `[linux/amd64 stage-1 2/4] ...`: a Dockerfile step. */
const STEP_NAME = /^\[(?:\S*\/\S* )?(?:(\S+) )?(\d+)\/(\d+)\] (.*)$/s;
const CANCELLED = /context canceled|\bcanceled\b|\bcancelled\b/i;

/**
 * Pure: folds one item of BuildKit's raw JSON progress (see rawjson.ts) into the progress. A step is
 * counted once it starts (or is reported cached); its output lines are prefixed with its label, as
 * steps of different stages run at once; text after the objects (`ERROR: failed to solve: ...`) goes
 * to the log, and its ERROR line is the build's error.
 */
export function reduceSolveStatus(progress: BuildProgress, item: RawJsonItem): BuildProgress {
  const next: BuildProgress = { ...progress };
  const added: string[] = [];
  if (item.kind === 'text') {
    added.push(item.line);
    const error = /^ERROR:\s*(.*)$/.exec(item.line);
    if (error) next.error = error[1]!.replace(/^failed to solve:\s*/, '');
    return appendLog(next, added);
  }
  const status = item.value as SolveStatus;
  if (!status || typeof status !== 'object') return next;
  for (const vertex of status.vertexes ?? []) {
    if (!vertex.digest || !vertex.name) continue;
    const known = next.vertexes[vertex.digest];
    let state: VertexState = known ?? { name: vertex.name, step: undefined, tail: [], partial: '' };
    const step = STEP_NAME.exec(vertex.name);
    const active = Boolean(vertex.started || vertex.completed || vertex.cached);
    if (step && active) {
      const label = `[${vertex.name.slice(1, vertex.name.indexOf(']'))}]`;
      let index = state.step ?? next.steps.findIndex((s) => s.label === label);
      if (index < 0) {
        next.steps = [
          ...next.steps,
          {
            index: Number(step[2]),
            total: Number(step[3]),
            instruction: step[4]!.trim(),
            stage: stageOf(next.stages, step[1]),
            cached: false,
            label,
          },
        ];
        index = next.steps.length - 1;
        added.push(vertex.name);
      }
      if (vertex.cached && !next.steps[index]!.cached) {
        next.steps = next.steps.map((s, i) => (i === index ? { ...s, cached: true } : s));
        added.push(`${label} CACHED`);
      }
      state = { ...state, step: index };
    }
    if (vertex.completed && state.partial) state = flushPartial(state, added, labelOf(state, next));
    if (vertex.error && !CANCELLED.test(vertex.error)) {
      added.push(`${labelOf(state, next) ?? `[${vertex.name}]`} ERROR: ${vertex.error}`);
      next.failure ??= { vertex: vertex.digest, name: vertex.name, step: state.step, error: vertex.error };
    }
    if (state !== known) next.vertexes = { ...next.vertexes, [vertex.digest]: state };
  }
  for (const log of status.logs ?? []) {
    if (!log.vertex || !log.data) continue;
    const known = next.vertexes[log.vertex] ?? { name: '', step: undefined, tail: [], partial: '' };
    const text = known.partial + Buffer.from(log.data, 'base64').toString('utf8');
    const lines = text.split('\n');
    const partial = lines.pop() ?? '';
    const label = labelOf(known, next);
    const shown = lines
      .map(
        (l) =>
          l
            .split('\r')
            .filter((part) => part !== '')
            .pop() ?? '',
      )
      .filter((l) => l.trim() !== '');
    added.push(...shown.map((l) => (label ? `${label} ${l}` : l)));
    next.vertexes = {
      ...next.vertexes,
      [log.vertex]: { ...known, partial, tail: [...known.tail, ...shown].slice(-TAIL_LINES) },
    };
  }
  for (const warning of status.warnings ?? []) {
    if (warning.short) added.push(`WARNING: ${Buffer.from(warning.short, 'base64').toString('utf8').trim()}`);
  }
  return appendLog(next, added);
}

function stageOf(stages: readonly BuildStage[], name: string | undefined): number {
  if (name === undefined) return stages.length > 0 ? stages.length - 1 : 0;
  const named = stages.find((s) => s.name === name.toLowerCase());
  if (named) return named.index;
  const numbered = /^stage-(\d+)$/.exec(name);
  return numbered ? Number(numbered[1]) : -1;
}

function labelOf(state: VertexState, progress: BuildProgress): string | undefined {
  return state.step === undefined ? undefined : progress.steps[state.step]?.label;
}

function flushPartial(state: VertexState, added: string[], label: string | undefined): VertexState {
  const line =
    state.partial
      .split('\r')
      .filter((part) => part !== '')
      .pop() ?? '';
  if (line.trim() === '') return { ...state, partial: '' };
  added.push(label ? `${label} ${line}` : line);
  return { ...state, partial: '', tail: [...state.tail, line].slice(-TAIL_LINES) };
}

function appendLog(progress: BuildProgress, added: readonly string[]): BuildProgress {
  if (added.length === 0) return progress;
  return {
    ...progress,
    log: [...progress.log, ...added].slice(-LOG_LIMIT),
    logCount: progress.logCount + added.length,
  };
}

/** Pure: the lines a fold added to the log. */
export function addedLines(before: BuildProgress, after: BuildProgress): string[] {
  const count = after.logCount - before.logCount;
  return count > 0 ? after.log.slice(-Math.min(count, after.log.length)) : [];
}

/**
 * Pure: what a failed BuildKit build reports: the step that failed (when a step did), the error, and
 * the end of that step's output (else of the whole log).
 */
export function buildkitFailure(
  progress: BuildProgress,
  exitCode: number | undefined,
): { step: BuildStep | undefined; error: string; tail: string[] } {
  const failure = progress.failure;
  const step = failure?.step === undefined ? undefined : progress.steps[failure.step];
  const own = failure ? (progress.vertexes[failure.vertex]?.tail ?? []) : [];
  const error =
    progress.error ??
    failure?.error ??
    (exitCode === undefined
      ? 'docker buildx build did not run to the end'
      : `docker buildx build exited with code ${exitCode}`);
  return { step, error, tail: own.length > 0 ? own.slice(-TAIL_LINES) : progress.log.slice(-TAIL_LINES) };
}
