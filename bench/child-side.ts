/**
 * What a bench server process (bench/e2e-server.ts, bench/soak-server.ts) uses to answer the
 * orchestrator that started it (bench/children.ts).
 */
import type { Serializable } from 'node:child_process'
import { wasmMemoryBytes } from '../src/backends/wasm.js'

/** Resolves once the message is handed to the IPC channel; at once when run without one (by hand). */
export function sendToParent(message: Serializable): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

/** The wasm module's linear memory, or null where this process never loaded it (a peer's server). */
export function wasmBytesOrNull(): number | null {
  try {
    return wasmMemoryBytes()
  } catch {
    return null
  }
}
