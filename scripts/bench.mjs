#!/usr/bin/env node
// opskit's benchmarks. Each one measures opskit and its baseline side by side in the same run,
// interleaved so that machine noise hits both alike, and prints the ratio. `npm run bench` builds first.
import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'dist', 'bin.js');
const json = process.argv.includes('--json');
const runs = Number(process.env.BENCH_RUNS ?? 30);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];

async function timeOnce(file, args) {
  const t0 = performance.now();
  const r = await execa(file, args, { reject: false, stdin: 'ignore', env: { NO_COLOR: '1' } });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  return ms;
}

/** Runs A and B alternately `runs` times after a warm-up; returns their medians and the ratio A/B. */
async function sideBySide(a, b) {
  for (let i = 0; i < 3; i++) {
    await timeOnce(...a.argv);
    await timeOnce(...b.argv);
  }
  const ta = [];
  const tb = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2) {
      tb.push(await timeOnce(...b.argv));
      ta.push(await timeOnce(...a.argv));
    } else {
      ta.push(await timeOnce(...a.argv));
      tb.push(await timeOnce(...b.argv));
    }
  }
  return {
    [a.name]: { medianMs: +median(ta).toFixed(1), p90Ms: +p90(ta).toFixed(1) },
    [b.name]: { medianMs: +median(tb).toFixed(1), p90Ms: +p90(tb).toFixed(1) },
    ratio: +(median(ta) / median(tb)).toFixed(2),
  };
}

const benchmarks = [
  {
    name: 'cold start: opskit --help vs node -e 0',
    goal: 'ratio < 2.0',
    pass: (r) => r.ratio < 2,
    run: () => sideBySide({ name: 'opskit --help', argv: [process.execPath, [bin, '--help']] }, { name: 'node -e 0', argv: [process.execPath, ['-e', '0']] }),
  },
];

const machine = {
  cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
  memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  runs,
};
const results = [];
for (const b of benchmarks) {
  const r = await b.run();
  results.push({ name: b.name, goal: b.goal, met: b.pass(r), ...r });
}
if (json) {
  process.stdout.write(`${JSON.stringify({ machine, date: new Date().toISOString(), results }, null, 2)}\n`);
} else {
  const lines = [`opskit benchmarks (${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${runs} interleaved runs each)`, ''];
  for (const r of results) {
    const [a, b] = Object.keys(r).filter((k) => r[k] && typeof r[k] === 'object');
    lines.push(`${r.name}`);
    lines.push(`  ${a}: median ${r[a].medianMs} ms (p90 ${r[a].p90Ms} ms)`);
    lines.push(`  ${b}: median ${r[b].medianMs} ms (p90 ${r[b].p90Ms} ms)`);
    lines.push(`  ratio ${r.ratio}x   goal ${r.goal}: ${r.met ? 'met' : 'NOT met'}`);
    lines.push('');
  }
  process.stdout.write(lines.join('\n'));
}
