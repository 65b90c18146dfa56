// What a person sees while a build runs: on a terminal, one status line per long stage that
// keeps the stage name, elapsed time and the tool's latest line (with its percentage when it
// prints one) up to date; elsewhere (CI logs, pipes) plain lines only, one per event.

export class Progress {
  private readonly t0 = Date.now();
  private stage?: { name: string; t0: number };
  private last = '';
  private timer?: NodeJS.Timeout;
  private shown = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    readonly tty: boolean = out.isTTY === true,
  ) {}

  private stamp(): string {
    return `${((Date.now() - this.t0) / 1000).toFixed(0).padStart(4)}s`;
  }

  /** A plain line (clears and redraws the status line around it on a terminal). */
  say = (msg: string): void => {
    this.clear();
    this.out.write(`${this.stamp()} ${msg}\n`);
    this.draw();
  };

  startStage(name: string): void {
    this.stage = { name, t0: Date.now() };
    this.last = '';
    if (this.tty && !this.timer) {
      this.timer = setInterval(() => this.draw(), 1000);
      this.timer.unref();
    }
    this.draw();
  }

  endStage(): void {
    this.clear();
    this.stage = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Tool output as it arrives: remembers the latest non-empty line (after any \r). */
  observe = (chunk: string): void => {
    const line = chunk
      .split(/[\r\n]/)
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1);
    if (line) this.last = line;
  };

  /** The status text: stage, elapsed seconds, percent if the tool printed one, its latest line. */
  status(width = 100): string {
    if (!this.stage) return '';
    const secs = Math.round((Date.now() - this.stage.t0) / 1000);
    const pct = /(\d{1,3})%/.exec(this.last)?.[1];
    const head = `${this.stamp()} [${this.stage.name}] ${secs}s${pct ? ` ${pct}%` : ''}`;
    const room = width - head.length - 3;
    const tail = this.last.replace(/\[[=\\/|\- ]*\]\s*/g, '');
    return room > 10 && tail ? `${head} · ${tail.slice(0, room)}` : head;
  }

  private draw(): void {
    if (!this.tty || !this.stage) return;
    this.out.write(`\r\x1b[K${this.status(this.out.columns ?? 100)}`);
    this.shown = true;
  }

  private clear(): void {
    if (this.tty && this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
