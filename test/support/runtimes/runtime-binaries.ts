/** Whether a runtime's binary starts here: what the suites and the bench check before using it. */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './linked-app.js'

export interface RuntimeBinary {
  /** What the suites call it: `workerd`, `Chromium`, `Deno`, `Bun`. */
  readonly name: string
  readonly path: string
  /** The first line `--version` printed, when it started. */
  readonly version: string | undefined
  /** Why it cannot start, when it cannot. */
  readonly problem: string | undefined
}

/** A binary of node_modules/.bin (the npm packages ship them: workerd, deno, bun). */
export function packageBinary(name: string, command: string): RuntimeBinary {
  return probeBinary(name, join(REPO_ROOT, 'node_modules', '.bin', command))
}

/** Runs `path --version` once; a binary that does not answer within 20 s does not start. */
export function probeBinary(name: string, path: string): RuntimeBinary {
  if (!existsSync(path)) return { name, path, version: undefined, problem: `${path} does not exist` }
  try {
    const out = execFileSync(path, ['--version'], {
      encoding: 'utf8',
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return { name, path, version: out.trim().split('\n')[0], problem: undefined }
  } catch (error) {
    return { name, path, version: undefined, problem: `${path} --version failed: ${(error as Error).message}` }
  }
}
