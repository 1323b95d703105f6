/** Aligned text columns; `colour` is applied after padding so ANSI codes never break alignment. */
export function renderTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  colour: (row: number, column: number, cell: string) => string = (_r, _c, cell) => cell,
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[], row: number) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i]!);
        return row < 0 ? padded : colour(row, i, padded);
      })
      .join('  ')
      .trimEnd();
  return [
    line(headers, -1),
    line(
      widths.map((w) => '-'.repeat(w)),
      -1,
    ),
    ...rows.map((r, i) => line(r, i)),
  ].join('\n');
}
