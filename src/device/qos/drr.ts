/**
 * Deficit round robin (Shreedhar & Varghese, SIGCOMM 1995) over flows numbered 0..n-1 (VIF
 * slots), with weights. Pure and allocation-free: the caller supplies a `DrrServer` that moves
 * the frames; `pass()` decides who is served and how many bytes each may take.
 *
 * Each flow in the rotation has a deficit. When a visit finds a flow's deficit used up (<= 0) its
 * turn begins and it earns `weight x quantum` bytes; it may then take frames while its deficit is
 * above 0. A frame's length is known only after it is taken, so the last frame of a turn may
 * overdraw the deficit by less than one frame; the debt is paid from the next quantum (the
 * long-run shares stay exactly the weights). A flow that runs empty or is held by its own limit
 * leaves the rotation with its deficit cleared (classic DRR: an idle flow keeps no credit).
 *
 * A shared gate (the uplink port's capacity) can close in the middle of a pass. Flows behind the
 * gate are skipped (others, e.g. VIF-to-VIF traffic, are still served) and the next pass resumes
 * at the first flow the gate stopped, without granting it a new quantum: the gate's bandwidth is
 * handed out in DRR order, so flows share the port in proportion to their weights.
 */

/** What happened in a `DrrServer.serve` call. */
export const MORE = 0; // budget used up (or frame cap): still backlogged
export const EMPTY = 1; // nothing left to send
export const HELD = 2; // stopped by the flow's own limit (token bucket): leaves the rotation
export const GATED = 3; // the shared gate closed during the visit

export interface DrrServer {
  /** Is the shared gate closed for this flow right now? */
  gated(flow: number): boolean;
  /** Take up to `budgetBytes` from the flow; return the bytes taken and set `outcome`. */
  serve(flow: number, budgetBytes: number): number;
  outcome: number;
  /** Called before each visit (the engine polls its priority class here). */
  beforeVisit(): void;
}

export class Drr {
  readonly weight: Float64Array;
  readonly deficit: Float64Array;
  /** Bytes per unit of weight per turn. */
  quantum: number;
  private readonly order: Int32Array;
  private readonly member: Uint8Array;
  private n = 0;
  private start = 0;

  constructor(maxFlows: number, quantum: number) {
    this.weight = new Float64Array(maxFlows).fill(1);
    this.deficit = new Float64Array(maxFlows);
    this.order = new Int32Array(maxFlows);
    this.member = new Uint8Array(maxFlows);
    this.quantum = quantum;
  }

  get count(): number {
    return this.n;
  }

  /** The i-th flow of the rotation (0 <= i < count). */
  flowAt(i: number): number {
    return this.order[i]!;
  }

  has(flow: number): boolean {
    return this.member[flow] === 1;
  }

  /** The flow became backlogged: it joins the rotation at the end. */
  add(flow: number): void {
    if (this.member[flow] === 1) return;
    this.member[flow] = 1;
    this.deficit[flow] = 0;
    this.order[this.n++] = flow;
  }

  /** The flow leaves the rotation (empty, held, or gone); its deficit is cleared. */
  remove(flow: number): void {
    if (this.member[flow] !== 1) return;
    for (let i = 0; i < this.n; i++) {
      if (this.order[i] === flow) {
        this.removeAt(i);
        return;
      }
    }
  }

  private removeAt(i: number): void {
    const f = this.order[i]!;
    this.member[f] = 0;
    this.deficit[f] = 0;
    this.order.copyWithin(i, i + 1, this.n);
    this.n--;
    if (i < this.start) this.start--;
    if (this.start >= this.n) this.start = 0;
  }

  /**
   * One pass: visit every flow of the rotation once, starting where the last pass said. Returns
   * the bytes served.
   */
  pass(srv: DrrServer): number {
    const n0 = this.n;
    if (n0 === 0) return 0;
    let resume = -1;
    let served = 0;
    let i = this.start;
    for (let visited = 0; visited < n0 && this.n !== 0; visited++) {
      if (i >= this.n) i = 0;
      const f = this.order[i]!;
      srv.beforeVisit();
      if (srv.gated(f)) {
        if (resume < 0) resume = f;
        i++;
        continue;
      }
      if (this.deficit[f]! <= 0) this.deficit[f]! += this.weight[f]! * this.quantum;
      const took = srv.serve(f, this.deficit[f]!);
      this.deficit[f]! -= took;
      served += took;
      const out = srv.outcome;
      if (out === EMPTY || out === HELD) {
        this.removeAt(i);
        continue;
      }
      if (out === GATED && this.deficit[f]! > 0 && resume < 0) resume = f;
      i++;
    }
    if (resume >= 0) {
      for (let k = 0; k < this.n; k++) if (this.order[k] === resume) this.start = k;
    }
    return served;
  }
}
