/**
 * A throwaway application directory laid out as a user's project that installed this package:
 * its own package.json, `node_modules/caracal-fastmcp` (a link to this repository, so resolution
 * goes through our package.json `exports` and their conditions, and our dependencies resolve from
 * our own node_modules), and the driver sources copied in as the application's code.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The directory of our package.json, from the sources or from their compiled copy in dist/ (the bench). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = join(dir, 'package.json')
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'caracal-fastmcp'
    )
      return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error('caracal-fastmcp: package.json not found above the runtime harness')
    dir = parent
  }
}

export const REPO_ROOT = packageRoot()
const DRIVER_DIR = join(REPO_ROOT, 'test', 'support', 'runtimes', 'driver')

export interface LinkedApp {
  readonly dir: string
  /** Where the driver's sources are, inside `dir`. */
  readonly srcDir: string
  remove(): void
}

export function linkedApp(prefix: string): LinkedApp {
  const dir = mkdtempSync(join(tmpdir(), `caracal-${prefix}-`))
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `${prefix}-app`, private: true, type: 'module' })}\n`,
  )
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'caracal-fastmcp'), 'dir')
  const srcDir = join(dir, 'src')
  cpSync(DRIVER_DIR, srcDir, { recursive: true })
  return { dir, srcDir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
