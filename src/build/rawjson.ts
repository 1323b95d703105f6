/**
 * `docker buildx build --progress=rawjson` writes to stderr a stream of concatenated, pretty-printed JSON
 * objects (BuildKit's SolveStatus), and, when the build fails, plain text after them (the Dockerfile
 * excerpt, `ERROR: failed to solve: ...`). This splits that stream into objects and text lines, whatever
 * the chunk boundaries, with braces inside strings left alone.
 */

export type RawJsonItem = { kind: 'object'; value: unknown } | { kind: 'text'; line: string };

export interface RawJsonSplitter {
  /** The item being read: an object's text so far, or a text line so far. */
  pending: string;
  mode: 'text' | 'object';
  depth: number;
  inString: boolean;
  escaped: boolean;
}

export const emptySplitter = (): RawJsonSplitter => ({
  pending: '',
  mode: 'text',
  depth: 0,
  inString: false,
  escaped: false,
});

/**
 * Pure: feeds one chunk. An object starts with `{` at the start of a line (text such as
 * `ERROR: ... {x}` stays text) and ends at its matching brace; what fails to parse comes back as text.
 */
export function splitRawJson(state: RawJsonSplitter, chunk: string): { state: RawJsonSplitter; items: RawJsonItem[] } {
  const items: RawJsonItem[] = [];
  let { pending, mode, depth, inString, escaped } = state;
  let start = 0; // chunk[start..i) is not yet in pending
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i]!;
    if (mode === 'text') {
      if (c === '\n') {
        pushText(items, pending + chunk.slice(start, i));
        pending = '';
        start = i + 1;
      } else if (c === '{' && (pending + chunk.slice(start, i)).trim() === '') {
        mode = 'object';
        depth = 1;
        inString = false;
        escaped = false;
        pending = '';
        start = i;
      }
      continue;
    }
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        const text = pending + chunk.slice(start, i + 1);
        items.push(...parseObject(text));
        pending = '';
        start = i + 1;
        mode = 'text';
      }
    }
  }
  pending += chunk.slice(start);
  return { state: { pending, mode, depth, inString, escaped }, items };
}

/** Pure: what is left when the stream ends (a last line without a newline, a cut-off object) as text. */
export function flushRawJson(state: RawJsonSplitter): RawJsonItem[] {
  const items: RawJsonItem[] = [];
  for (const line of state.pending.split('\n')) pushText(items, line);
  return items;
}

function parseObject(text: string): RawJsonItem[] {
  try {
    return [{ kind: 'object', value: JSON.parse(text) }];
  } catch {
    const items: RawJsonItem[] = [];
    for (const line of text.split('\n')) pushText(items, line);
    return items;
  }
}

function pushText(items: RawJsonItem[], line: string): void {
  const clean = line.replace(/\r$/, '');
  if (clean.trim() !== '') items.push({ kind: 'text', line: clean });
}
