// Builds assembly/ to build/*.wasm when the AssemblyScript sources exist (issue: wasm hot path).
import { existsSync } from 'node:fs'
if (!existsSync(new URL('../assembly/index.ts', import.meta.url))) {
  console.log('build:wasm: no assembly/index.ts yet, nothing to build')
  process.exit(0)
}
const { main } = await import('assemblyscript/asc')
const { error } = await main(['--config', 'asconfig.json', '--target', 'release'])
if (error) { console.error(error.message); process.exit(1) }
