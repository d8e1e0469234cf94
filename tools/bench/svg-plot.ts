// Hand-written SVG line charts: a percentile plot (x: 1/(1-p) on a log scale, y: latency on a log scale) and a
// plain time series. No plotting dependency; the output is small, diffable text that GitHub renders inline.

export interface Series {
  readonly name: string;
  readonly points: readonly { x: number; y: number }[];
}

interface Axis {
  readonly log: boolean;
  readonly min: number;
  readonly max: number;
  readonly ticks: readonly { value: number; label: string }[];
  readonly title: string;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000000'];
const W = 760;
const H = 420;
const M = { left: 70, right: 190, top: 36, bottom: 52 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function scale(axis: Axis, v: number, from: number, to: number): number {
  const t = axis.log
    ? (Math.log10(v) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min))
    : (v - axis.min) / (axis.max - axis.min || 1);
  return from + Math.min(1, Math.max(0, t)) * (to - from);
}

function chart(title: string, series: readonly Series[], x: Axis, y: Axis): string {
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = H - M.bottom;
  const y1 = M.top;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2 - M.right / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  for (const t of x.ticks) {
    const px = scale(x, t.value, x0, x1).toFixed(1);
    out.push(`<line x1="${px}" y1="${y0}" x2="${px}" y2="${y1}" stroke="#ddd"/>`);
    out.push(`<text x="${px}" y="${y0 + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  }
  for (const t of y.ticks) {
    const py = scale(y, t.value, y0, y1).toFixed(1);
    out.push(`<line x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(x0 + x1) / 2}" y="${H - 12}" text-anchor="middle">${esc(x.title)}</text>`);
  out.push(
    `<text x="16" y="${(y0 + y1) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(y0 + y1) / 2})">${esc(y.title)}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length] ?? '#000';
    const pts = s.points
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!x.log || p.x > 0) && (!y.log || p.y > 0))
      .map((p) => `${scale(x, p.x, x0, x1).toFixed(1)},${scale(y, p.y, y0, y1).toFixed(1)}`);
    if (pts.length) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.join(' ')}"/>`);
    const ly = M.top + 8 + i * 16;
    out.push(`<line x1="${x1 + 12}" y1="${ly}" x2="${x1 + 32}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${x1 + 38}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function logTicks(min: number, max: number, format: (v: number) => string): { value: number; label: string }[] {
  const ticks: { value: number; label: string }[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) ticks.push({ value: v, label: format(v) });
    }
  }
  return ticks;
}

function formatMs(v: number): string {
  if (v >= 1000) return `${v / 1000} s`;
  return `${Number(v.toPrecision(3))} ms`;
}

/** Latency by percentile; each series' points are { p (0-100), ms }. */
export function percentilePlot(title: string, curves: readonly { name: string; points: readonly { p: number; ms: number }[] }[]): string {
  const series = curves.map((c) => ({ name: c.name, points: c.points.map((pt) => ({ x: 1 / (1 - pt.p / 100), y: pt.ms })) }));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((v) => v > 0 && Number.isFinite(v));
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter((v) => Number.isFinite(v));
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys, 1)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, 1)));
  const xMax = Math.max(10, ...xs);
  const xTicks = [
    { value: 1, label: 'p0' },
    { value: 2, label: 'p50' },
    { value: 10, label: 'p90' },
    { value: 100, label: 'p99' },
    { value: 1000, label: 'p99.9' },
    { value: 10_000, label: 'p99.99' },
    { value: 100_000, label: 'p99.999' },
  ].filter((t) => t.value <= xMax * 1.001);
  return chart(
    title,
    series,
    { log: true, min: 1, max: xMax, ticks: xTicks, title: 'percentile (log scale of 1/(1-p))' },
    { log: true, min: yMin, max: yMax, ticks: logTicks(yMin, yMax, formatMs), title: 'latency (log scale)' },
  );
}

/** y over time (seconds). */
export function timePlot(title: string, yTitle: string, series: readonly Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys) * 1.1;
  const step = (max: number) => {
    const raw = max / 6;
    const mag = 10 ** Math.floor(Math.log10(raw));
    return ([1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw);
  };
  const ticks = (max: number) => {
    const s = step(max);
    const out: { value: number; label: string }[] = [];
    for (let v = 0; v <= max + 1e-9; v += s) out.push({ value: v, label: String(Number(v.toPrecision(4))) });
    return out;
  };
  return chart(
    title,
    series,
    { log: false, min: 0, max: xMax, ticks: ticks(xMax), title: 'seconds' },
    { log: false, min: 0, max: yMax, ticks: ticks(yMax), title: yTitle },
  );
}

/** p99 (ms) against offered rate (req/s), both on log scales; each series' points are { x: rate, y: ms }. */
export function ratePlot(title: string, series: readonly Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter((v) => v > 0 && Number.isFinite(v));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((v) => v > 0 && Number.isFinite(v));
  const xMin = Math.min(...xs, 1e9) * 0.9;
  const xMax = Math.max(...xs, 1) * 1.1;
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys, 1)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, 1)));
  const rates = [...new Set(xs)].sort((a, b) => a - b).map((v) => ({ value: v, label: String(v) }));
  return chart(
    title,
    series,
    { log: true, min: xMin, max: xMax, ticks: rates, title: 'offered rate (req/s, log scale)' },
    { log: true, min: yMin, max: yMax, ticks: logTicks(yMin, yMax, formatMs), title: 'p99 latency (log scale)' },
  );
}
