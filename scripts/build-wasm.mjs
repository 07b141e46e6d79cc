// Builds assembly/ into the wasm module with asc and asconfig.json (docs/architecture.md "The wasm
// module"). The module is written beside its loader, src/backends/caracal.wasm (vitest runs the
// sources) and dist/src/backends/caracal.wasm (the package), where `new URL('./caracal.wasm',
// import.meta.url)` finds it in an installed package and in bundlers. Any failure exits non-zero:
// a package without its module must never be built.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ASSEMBLY_ID_FILE, HOST_ID_FILE, ROOT, assemblyIdSource, hostIdSource, wasmBuildId } from './wasm-build-id.mjs'

const OUT = 'src/backends/caracal.wasm'
const PACKAGE_OUT = 'dist/src/backends/caracal.wasm'

function writeIfChanged(path, text) {
  const full = join(ROOT, path)
  let current
  try {
    current = readFileSync(full, 'utf8')
  } catch {}
  if (current !== text) writeFileSync(full, text)
}

try {
  process.chdir(ROOT)
  const id = wasmBuildId()
  writeIfChanged(ASSEMBLY_ID_FILE, assemblyIdSource(id))
  writeIfChanged(HOST_ID_FILE, hostIdSource(id))
  const { main } = await import('assemblyscript/asc')
  const { error } = await main(['--config', 'asconfig.json', '--target', 'release', '--outFile', OUT], {
    stdout: process.stdout,
    stderr: process.stderr,
  })
  if (error) throw error
  mkdirSync(join(ROOT, 'dist/src/backends'), { recursive: true })
  copyFileSync(join(ROOT, OUT), join(ROOT, PACKAGE_OUT))
  console.log(`build:wasm: ${OUT} and ${PACKAGE_OUT} (build id ${id})`)
} catch (error) {
  console.error(`build:wasm failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
