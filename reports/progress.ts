/**
 * Progress of a long command (`check`, `capacity`), on stderr so stdout stays the command's
 * output: a bar with the rate and the time left, redrawn in place, when stderr is a terminal;
 * plain lines every `intervalMs` when it is not (a CI log); nothing when quiet.
 *
 * ```
 * check [##########----------]  52%  146/280 runs  11.8 runs/s  0:11 left  contention
 * ```
 *
 * The time left is the work left at the rate so far (capped by a time budget when there is one).
 * Wall time only: nothing here reaches a simulation.
 */

export type ProgressMode = 'bar' | 'lines' | 'quiet';

/** Where progress goes: a stream with, when it is a terminal, its width. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  /** What is being done: the first word of every line. */
  readonly label: string;
  /** Units of work, plural (e.g. 'runs', 'points'). */
  readonly unit: string;
  readonly stream: ProgressStream;
  /** Default: 'bar' on a terminal, else 'lines'; 'quiet' with --quiet. */
  readonly mode?: ProgressMode;
  /** Wall clock, ms. */
  readonly now: () => number;
  /** Between two plain lines, ms. Default 30,000. */
  readonly intervalMs?: number;
  /** Between two redraws of the bar, ms. Default 100. */
  readonly redrawMs?: number;
  /** Stop after this much wall time (the time left is at most what remains of it), ms. */
  readonly budgetMs?: number;
}

export function progressMode(stream: ProgressStream, quiet: boolean): ProgressMode {
  if (quiet) return 'quiet';
  return stream.isTTY === true ? 'bar' : 'lines';
}

/** "1:05", "12:00", "1:02:03" */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const totalSeconds = Math.round(ms / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const two = (value: number): string => String(value).padStart(2, '0');
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

export class Progress {
  readonly mode: ProgressMode;
  private readonly startedMs: number;
  private done = 0;
  private total = 0;
  private detail = '';
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private lastLineMs: number;
  /** Characters of the bar now on screen (0: none). */
  private drawn = 0;
  private finished = false;

  constructor(private readonly options: ProgressOptions) {
    this.mode = options.mode ?? progressMode(options.stream, false);
    this.startedMs = options.now();
    this.lastLineMs = this.startedMs;
  }

  /** Work done of the total so far (fractions allowed), and what is going on. */
  update(done: number, total: number, detail = this.detail): void {
    if (this.finished) return;
    this.done = Math.max(0, Math.min(done, total));
    this.total = Math.max(0, total);
    this.detail = detail;
    const nowMs = this.options.now();
    if (this.mode === 'bar') {
      if (nowMs - this.lastDrawMs >= (this.options.redrawMs ?? 100)) this.draw(nowMs);
    } else if (this.mode === 'lines' && nowMs - this.lastLineMs >= (this.options.intervalMs ?? 30_000)) {
      this.lastLineMs = nowMs;
      this.options.stream.write(`${this.describe(nowMs)}\n`);
    }
  }

  /** Prints through `print` (e.g. a result line on stdout) with the bar out of the way. */
  interrupt(print: () => void): void {
    this.clear();
    print();
    if (this.mode === 'bar' && !this.finished) this.draw(this.options.now());
  }

  /** Removes the bar (a terminal is left clean for the command's last lines). */
  finish(): void {
    this.clear();
    this.finished = true;
  }

  /** The progress as one line (without the bar). */
  describe(nowMs = this.options.now()): string {
    const elapsedMs = nowMs - this.startedMs;
    const rate = elapsedMs > 0 ? (this.done * 1000) / elapsedMs : 0;
    let leftMs = rate > 0 ? ((this.total - this.done) * 1000) / rate : Number.POSITIVE_INFINITY;
    if (this.options.budgetMs !== undefined) leftMs = Math.min(leftMs, Math.max(0, this.options.budgetMs - elapsedMs));
    const percent = this.total > 0 ? Math.floor((this.done / this.total) * 100) : 0;
    const done = Number.isInteger(this.done) ? String(this.done) : this.done.toFixed(1);
    const left = this.done > 0 || this.options.budgetMs !== undefined ? `${formatDuration(leftMs)} left` : 'estimating';
    return `${this.options.label} ${String(percent).padStart(3)}%  ${done}/${this.total} ${this.options.unit}  ${rate.toFixed(rate >= 10 ? 0 : 1)} ${this.options.unit}/s  ${left}${this.detail === '' ? '' : `  ${this.detail}`}`;
  }

  private draw(nowMs: number): void {
    this.lastDrawMs = nowMs;
    const width = this.options.stream.columns ?? 0;
    const columns = Math.max(40, (width > 0 ? width : 80) - 1); // a terminal of unknown size reports 0
    const barWidth = Math.max(10, Math.min(30, columns - 60));
    const filled = this.total > 0 ? Math.round((this.done / this.total) * barWidth) : 0;
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
    const text = this.describe(nowMs).replace(this.options.label, `${this.options.label} ${bar}`);
    const line = text.length > columns ? text.slice(0, columns) : text;
    this.options.stream.write(`\r${line}${' '.repeat(Math.max(0, this.drawn - line.length))}`);
    this.drawn = line.length;
  }

  private clear(): void {
    if (this.mode !== 'bar' || this.drawn === 0) return;
    this.options.stream.write(`\r${' '.repeat(this.drawn)}\r`);
    this.drawn = 0;
  }
}

/**
 * Progress of a check from its events: a run advances it by one, a scenario's end credits the
 * runs it did not make (a failure stops a scenario early), shrinking shows as the detail.
 */
export class CheckProgress {
  private scenariosDone = 0;
  private runsInScenario = 0;

  constructor(
    readonly progress: Progress,
    private readonly scenarios: number,
    private readonly runsPerScenario: number,
  ) {
    progress.update(0, scenarios * runsPerScenario, '');
  }

  onRun(scenario: string, run: number): void {
    this.runsInScenario = Math.min(run, this.runsPerScenario);
    this.update(scenario);
  }

  onShrink(scenario: string, step: number): void {
    this.update(`${scenario}: shrinking a failure, step ${step}`);
  }

  onScenarioDone(scenario: string): void {
    this.scenariosDone += 1;
    this.runsInScenario = 0;
    this.update(`${scenario} done`);
  }

  private update(detail: string): void {
    this.progress.update(this.scenariosDone * this.runsPerScenario + this.runsInScenario, this.scenarios * this.runsPerScenario, detail);
  }
}
