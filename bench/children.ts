/**
 * The bench's child processes (the soak's and the end-to-end suite's servers and loaders): spawned
 * with an IPC channel, pinned to a core with `taskset` where the machine allows it, their output
 * kept for the report and their messages queued until asked for.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** A child process with its output captured and its IPC messages queued. */
export class Child {
  readonly proc: ChildProcess
  output = ''
  readonly #queue: unknown[] = []
  readonly #waiters = new Set<() => void>()
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    onMessage?: (m: unknown) => boolean,
  ) {
    this.proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString('utf8')
    }
    this.proc.stdout?.on('data', keep)
    this.proc.stderr?.on('data', keep)
    this.proc.on('message', (m: unknown) => {
      if (onMessage?.(m) === true) return
      this.#queue.push(m)
      this.#wake()
    })
    this.proc.on('error', (error) => {
      this.output += `\n${name}: ${error.message}\n`
      this.exit ??= { code: null, signal: null }
      this.#wake()
    })
    this.proc.on('exit', (code, signal) => {
      this.exit = { code, signal }
      this.#wake()
    })
  }

  #wake(): void {
    for (const w of this.#waiters) w()
  }

  send(message: object): void {
    this.proc.send(message)
  }

  /** The next message of `type`; a `fatal` message, an exit or the timeout rejects, with the child's output tail. */
  next<T extends { type: string }>(type: T['type'], timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => finish(new Error(`${this.name}: no ${type} within ${timeoutMs} ms`)), timeoutMs)
      const finish = (error?: Error, value?: T) => {
        clearTimeout(deadline)
        this.#waiters.delete(check)
        if (error === undefined) resolve(value!)
        else reject(new Error(`${error.message}\n--- ${this.name} output (tail) ---\n${this.output.slice(-2000)}`))
      }
      const check = () => {
        const i = this.#queue.findIndex((m) => {
          const t = (m as { type?: unknown }).type
          return t === type || t === 'fatal'
        })
        if (i >= 0) {
          const [m] = this.#queue.splice(i, 1) as [{ type: string; message?: string }]
          if (m.type === 'fatal') finish(new Error(`${this.name} failed: ${m.message ?? ''}`))
          else finish(undefined, m as unknown as T)
        } else if (this.exit !== undefined) {
          finish(new Error(`${this.name} exited (${this.exit.signal ?? `code ${this.exit.code}`}) before ${type}`))
        }
      }
      this.#waiters.add(check)
      check()
    })
  }

  async stop(timeoutMs: number): Promise<void> {
    if (this.exit !== undefined) return
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }

  kill(): void {
    if (this.exit === undefined) this.proc.kill('SIGKILL')
  }
}

/** The CPUs this process may run on (Linux `Cpus_allowed_list`), or undefined elsewhere. */
export function allowedCpus(): number[] | undefined {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Cpus_allowed_list:'))
    if (line === undefined) return undefined
    const cpus: number[] = []
    for (const part of line.split(':')[1]!.trim().split(',')) {
      const [a, b] = part.split('-').map(Number)
      for (let c = a!; c <= (b ?? a!); c++) cpus.push(c)
    }
    return cpus
  } catch {
    return undefined
  }
}

export function pinning(): { server: number; loader: number } | null {
  const allowed = allowedCpus()
  if (allowed === undefined || allowed.length < 2) return null
  if (spawnSync('taskset', ['-c', String(allowed[0]), 'true'], { stdio: 'ignore' }).status !== 0) return null
  return { server: allowed[0]!, loader: allowed[1]! }
}

/** Run from bench/soak.ts (vitest, tsx) the children are TypeScript, run through tsx; from dist/bench, JavaScript. */
export function childCommand(
  name: string,
  cpus: number | readonly number[] | undefined,
  nodeOptions: readonly string[],
): [string, string[]] {
  const fromSource = fileURLToPath(import.meta.url).endsWith('.ts')
  const script = fileURLToPath(new URL(`./${name}${fromSource ? '.ts' : '.js'}`, import.meta.url))
  const node = [
    ...nodeOptions,
    ...(fromSource ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : []),
    script,
  ]
  if (cpus === undefined) return [process.execPath, node]
  return ['taskset', ['-c', typeof cpus === 'number' ? String(cpus) : cpus.join(','), process.execPath, ...node]]
}
