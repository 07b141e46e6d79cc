// Builds assembly/ to build/caracal.wasm (the wasm backend, docs/architecture.md "Backends") with asc and asconfig.json.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
const root = fileURLToPath(new URL('..', import.meta.url))
if (!existsSync(new URL('../assembly/index.ts', import.meta.url))) {
  console.log('build:wasm: no assembly/index.ts yet, nothing to build')
  process.exit(0)
}
process.chdir(root)
const { main } = await import('assemblyscript/asc')
const { error } = await main(['--config', 'asconfig.json', '--target', 'release'], {
  stdout: process.stdout,
  stderr: process.stderr,
})
if (error) { console.error(error.message); process.exit(1) }
