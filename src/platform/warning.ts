/**
 * The library's one way to warn (docs/architecture.md "Rules a change keeps": coded warnings, never
 * a token): `process.emitWarning` where the runtime has it (Node, Bun, Deno), so that
 * `--no-warnings` and `process.on('warning')` work as usual; `console.warn` with the same code
 * elsewhere (workerd, browsers).
 */
export function emitWarning(message: string, code: string): void {
  const proc = (globalThis as { process?: { emitWarning?: (message: string, options: { code: string }) => void } })
    .process
  if (typeof proc?.emitWarning === 'function') {
    proc.emitWarning(message, { code })
    return
  }
  console.warn(`(caracal-fastmcp) [${code}] ${message}`)
}
