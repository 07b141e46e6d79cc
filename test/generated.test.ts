/**
 * Generated files are current, and the wasm module in use is the one built from these sources:
 * the field and SHA-256 code emitted by assembly/codegen/, the build id written into both sides by
 * scripts/build-wasm.mjs, and a missing or stale module refused with its reason (never a quiet
 * fall back to another backend).
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { WASM_BUILD_ID } from '../src/backends/wasm-build-id.js'
import {
  ASSEMBLY_ID_FILE,
  HOST_ID_FILE,
  assemblyIdSource,
  hostIdSource,
  wasmBuildId,
} from '../scripts/wasm-build-id.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(join(root, path), 'utf8')

describe('generated files', () => {
  it.each([
    ['assembly/codegen/gen-field.mjs', 'assembly/p256-field.ts'],
    ['assembly/codegen/gen-sha256.mjs', 'assembly/sha256-compress.ts'],
  ])('%s reproduces %s', (generator, output) => {
    expect(execFileSync(process.execPath, [join(root, generator)], { encoding: 'utf8' })).toBe(read(output))
  })

  it('the committed build ids are those of the sources (run `npm run build` after changing assembly/)', () => {
    const id = wasmBuildId()
    expect(read(ASSEMBLY_ID_FILE)).toBe(assemblyIdSource(id))
    expect(read(HOST_ID_FILE)).toBe(hostIdSource(id))
    expect(WASM_BUILD_ID).toBe(Number(id))
  })
})

describe('the wasm module in use', () => {
  const copies: string[] = []
  afterAll(() => {
    for (const dir of copies) rmSync(dir, { recursive: true, force: true })
  })

  /** A copy of the built package's backends, changed by `edit`, asked what the loader says. */
  function loaderVerdict(edit: (dir: string) => void): { reason: string | null; auto: string } {
    const dir = mkdtempSync(join(tmpdir(), 'caracal-wasm-'))
    copies.push(dir)
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true })
    cpSync(join(root, 'package.json'), join(dir, 'package.json'))
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
    edit(join(dir, 'dist/src/backends'))
    const script = `
      const { wasmUnavailableReason } = await import('./dist/src/backends/wasm.js')
      const { CaracalAuth, InMemoryRevocationStore } = await import('./dist/src/index.js')
      let auto = 'constructed'
      try { new CaracalAuth({ issuer: 'http://127.0.0.1:1', audience: 'a', revocations: new InMemoryRevocationStore() }) }
      catch (e) { auto = String(e.message) }
      console.log(JSON.stringify({ reason: wasmUnavailableReason() ?? null, auto }))`
    return JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' }),
    )
  }

  it('is the one built from these sources', () => {
    expect(loaderVerdict(() => undefined)).toEqual({ reason: null, auto: 'constructed' })
  })

  it('a missing module is an error wherever wasm is asked for, auto included', () => {
    const verdict = loaderVerdict((dir) => rmSync(join(dir, 'caracal.wasm')))
    expect(verdict.reason).toMatch(/^caracal\.wasm cannot be read beside .*\(ENOENT\); run `npm run build`$/)
    expect(verdict.auto).toBe(`wasm backend: ${verdict.reason}`)
  })

  it.each([
    ['truncated', (bytes: Buffer) => bytes.subarray(0, bytes.length >> 1)],
    ['empty', () => Buffer.alloc(0)],
    ['a Git LFS pointer', () => Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 36144\n')],
  ])('a %s module is a broken build, not a platform without SIMD', (_label, corrupt) => {
    const verdict = loaderVerdict((dir) => {
      const file = join(dir, 'caracal.wasm')
      writeFileSync(file, corrupt(readFileSync(file)))
    })
    expect(verdict.reason).toMatch(
      /^caracal\.wasm is not a module this engine can compile \(.+\); run `npm run build`$/,
    )
    expect(verdict.auto).toBe(`wasm backend: ${verdict.reason}`)
  })

  it('a module built from other sources is refused as stale', () => {
    const verdict = loaderVerdict((dir) => {
      const file = join(dir, 'wasm-build-id.js')
      writeFileSync(file, readFileSync(file, 'utf8').replace(/0x[0-9a-f]{8}/, '0x00000001'))
    })
    expect(verdict.reason).toMatch(
      /^caracal\.wasm is stale: built from other sources \(0x[0-9a-f]{8}\) than this code expects \(0x00000001\)/,
    )
    expect(verdict.auto).toBe(`wasm backend: ${verdict.reason}`)
  })
})
