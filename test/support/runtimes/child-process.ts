/**
 * Runtime processes started by the suites and the bench: spawned, watched for a line that says
 * they are ready, and stopped by their own pid (never by name: other runs may share the machine).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'

export interface RuntimeProcess {
  readonly pid: number
  readonly child: ChildProcess
  /** stdout and stderr so far (the runtime's own messages: it never sees a token in its output). */
  output(): string
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export function startProcess(command: string, args: readonly string[], options: SpawnOptions = {}): RuntimeProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  if (child.pid === undefined) throw new Error(`${command} did not start`)
  running.add(child)
  let output = ''
  const keep = (chunk: Buffer) => {
    output = `${output}${chunk.toString('utf8')}`.slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.once('exit', () => running.delete(child))
  return {
    pid: child.pid,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** The first line of `stream` for which `match` returns a value; rejects on exit or timeout. */
export function firstMatchingLine<T>(
  proc: RuntimeProcess,
  stream: Readable,
  match: (line: string) => T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let pending = ''
    const done = (error: Error | undefined, value?: T) => {
      clearTimeout(timer)
      stream.off('data', onData)
      proc.child.off('exit', onExit)
      if (error === undefined) resolve(value as T)
      else reject(error)
    }
    const onData = (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      let newline = pending.indexOf('\n')
      while (newline >= 0) {
        const value = match(pending.slice(0, newline))
        pending = pending.slice(newline + 1)
        if (value !== undefined) return done(undefined, value)
        newline = pending.indexOf('\n')
      }
    }
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what}: exited (${code ?? signal}) before it was ready:\n${proc.output()}`))
    const timer = setTimeout(
      () => done(new Error(`${what}: not ready after ${timeoutMs} ms:\n${proc.output()}`)),
      timeoutMs,
    )
    stream.on('data', onData)
    proc.child.once('exit', onExit)
  })
}

/**
 * CPU time of every live thread of process `pid`, in ns (the first field of each thread's
 * /proc/<pid>/task/<tid>/schedstat). /proc/<pid>/stat would count in clock ticks (10 ms), too coarse
 * for a first verification that should cost less than that.
 */
export function processCpuNs(pid: number): number {
  let total = 0
  for (const ns of threadCpuNs(pid).values()) total += ns
  return total
}

/** CPU time of each live thread of process `pid`, in ns, by thread id (the main thread's is the pid). */
export function threadCpuNs(pid: number): Map<string, number> {
  const threads = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]))
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads
}

/**
 * The most CPU one thread spent between two readings of `threadCpuNs`, in ns: the thread that ran
 * the request (the isolate's), without the compiler threads it handed work to. A thread born
 * between the readings counts from zero.
 */
export function busiestThreadNs(before: Map<string, number>, after: Map<string, number>): number {
  let most = 0
  for (const [tid, ns] of after) most = Math.max(most, ns - (before.get(tid) ?? 0))
  return most
}
