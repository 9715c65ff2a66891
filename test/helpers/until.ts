/**
 * Wait until `pred` holds. This is a liveness bound, not a timing assertion: the limit is far above
 * anything the condition needs on a loaded machine, and failing it means "never happened".
 */
export async function until(pred: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
