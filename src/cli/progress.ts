/**
 * Progress output for long operations (applying a config, creating many VIFs, image builds,
 * benchmarks). On a terminal it redraws one line (`[ 3/12] title: what`); otherwise (logs, CI, a
 * pipe) it prints a line per step when there are few steps, and about every 5 % when there are many,
 * so a log of 1024 VIF creations stays short. It writes to stderr unless told otherwise, so stdout
 * stays clean for results.
 *
 *   const p = progress('applying config', plan.steps.length);
 *   for (const s of steps) { p.step(describe(s)); await run(s); }
 *   p.done('12 changes');            // or p.fail(err.message)
 */
export interface Progress {
  /** Starting the next step (1-based count shown); `label` says what it is. */
  step(label: string): void;
  done(message?: string): void;
  fail(message: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Default: whether the stream is a terminal. */
  tty?: boolean;
  /** Prefix of non-terminal lines (default "svnic: "). */
  prefix?: string;
  /** false: print nothing (for --quiet and --json). */
  enabled?: boolean;
}

export function progress(title: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const prefix = opts.prefix ?? 'svnic: ';
  const enabled = opts.enabled ?? true;
  const width = String(total).length;
  let n = 0;
  let lastBucket = -1;
  let open = false;
  const count = () => `[${String(n).padStart(width)}/${total}]`;
  const cut = (s: string) => (stream.columns && s.length >= stream.columns ? `${s.slice(0, stream.columns - 2)}…` : s);
  return {
    step(label: string) {
      n++;
      if (!enabled) return;
      if (tty) {
        stream.write(`\r\x1b[K${cut(`${count()} ${title}: ${label}`)}`);
        open = true;
        return;
      }
      const bucket = total <= 20 ? n : Math.floor((n * 20) / total);
      if (bucket !== lastBucket || n === total) {
        lastBucket = bucket;
        stream.write(`${prefix}${title} ${count()} ${label}\n`);
      }
    },
    done(message?: string) {
      if (!enabled) return;
      if (tty && open) stream.write('\r\x1b[K');
      open = false;
      stream.write(`${prefix}${title}: done${message ? ` (${message})` : ''}\n`);
    },
    fail(message: string) {
      if (!enabled) return;
      if (tty && open) stream.write('\n');
      open = false;
      stream.write(`${prefix}${title}: failed at step ${n}/${total}: ${message}\n`);
    },
  };
}
