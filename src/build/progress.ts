import type { BuildEvent } from '../adapters/docker.js';

export interface BuildStep {
  index: number;
  total: number;
  instruction: string;
  stage: number;
  cached: boolean;
  /** The image this step produced (short id), once it has. */
  imageId?: string;
}

export interface BuildStage {
  index: number;
  name: string | undefined;
  from: string;
}

export interface BuildProgress {
  steps: BuildStep[];
  stages: BuildStage[];
  /** Every output line, for --verbose and for the tail of a failure. */
  log: string[];
  imageId: string | undefined;
  error: string | undefined;
}

export const emptyProgress = (): BuildProgress => ({ steps: [], stages: [], log: [], imageId: undefined, error: undefined });

/**
 * Pure: folds one event of the legacy builder's stream into the progress. The lines it reads:
 * `Step 4/11 : RUN ...`, ` ---> Using cache`, ` ---> 1a2b3c4d5e6f`, `Successfully built 1a2b...`.
 */
export function reduceBuildEvent(progress: BuildProgress, event: BuildEvent): BuildProgress {
  const next: BuildProgress = { ...progress, steps: [...progress.steps], stages: [...progress.stages], log: [...progress.log] };
  if (event.error || event.errorDetail) {
    next.error = event.errorDetail?.message ?? event.error;
    next.log.push(next.error ?? '');
    return next;
  }
  if (event.aux?.ID) next.imageId = event.aux.ID;
  const text = event.stream ?? event.status;
  if (!text) return next;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    next.log.push(line.replace(/\r$/, ''));
    const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
    if (step) {
      const instruction = step[3]!.trim();
      const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(instruction);
      if (from) next.stages.push({ index: next.stages.length, name: from[2], from: from[1]! });
      // Steps before the first FROM (global ARGs) belong to no stage: -1.
      next.steps.push({ index: Number(step[1]), total: Number(step[2]), instruction, stage: next.stages.length - 1, cached: false });
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
  return `Step ${step.index}/${step.total}: ${instruction}`;
}
