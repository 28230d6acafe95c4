// The page's meter: rolling FPS and mean per-stage milliseconds over the last WINDOW frames
// (what edge-run's meter shows), and the median the page's stats() reports.
const WINDOW = 30; // frames in the rolling FPS and stage averages

/** Rolling FPS (frames finished per second) and mean per-stage milliseconds. */
export class Meter {
  constructor() { this.reset(); }
  reset() { this.ends = []; this.stages = []; this.frames = 0; }
  add(stageMs) {
    this.ends.push(performance.now());
    this.stages.push(stageMs);
    this.frames++;
    if (this.ends.length > WINDOW) { this.ends.shift(); this.stages.shift(); }
  }
  fps() {
    const n = this.ends.length;
    return n < 2 ? 0 : (n - 1) * 1000 / (this.ends[n - 1] - this.ends[0]);
  }
  stageMs() {
    const out = {};
    for (const s of this.stages) for (const [k, v] of Object.entries(s)) out[k] = (out[k] || 0) + v;
    for (const k of Object.keys(out)) out[k] /= this.stages.length;
    return out;
  }
}

/** The median of a list of numbers (0 for none). */
export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v.length ? (v[(v.length - 1) >> 1] + v[v.length >> 1]) / 2 : 0;
}
