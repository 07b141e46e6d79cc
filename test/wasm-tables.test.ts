/**
 * The wasm backend's P-256 tables (assembly/p256-tables.ts, docs/architecture.md "Backends"): a key
 * starts without its fixed-base table, the table is built once the key is hot, a chunk per
 * verification, then the generator's. Verification reads the tables only once both are complete,
 * but the builder works in the same linear memory between verifications: at every stage the
 * Wycheproof vectors must come out right and generated signatures must get node:crypto's answer.
 * Linear memory grows by what `wasmKeyBytes()` says, and only once per table.
 *
 * The generator's table is per module instance, and vitest gives each test file its own: the
 * stages run in order here, from a module that has built nothing (checked, not assumed).
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backends/node.js'
import type { VerifyingKey } from '../src/backends/types.js'
import {
  type EcTableStage,
  wasmBackend,
  wasmInternalsForTests,
  wasmKeyBytes,
  wasmMemoryBytes,
} from '../src/backends/wasm.js'
import { type EcPublicKeyMaterial, readPublicKey } from '../src/jws/public-key.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { AUDIENCE, ISSUER, NOW_MS, mint } from './support/mandates.js'
import { ecJwk, ecdsaFile } from './support/wycheproof.js'

const tables = wasmInternalsForTests

function material(jwk: JsonWebKey): EcPublicKeyMaterial {
  const m = readPublicKey('ES256', jwk)
  if (typeof m === 'string') throw new Error(m)
  return m as EcPublicKeyMaterial
}

/** Runs chunks one at a time until the key's own table is complete (the generator's is not started). */
function completeKeyTable(key: VerifyingKey): void {
  for (let i = 0; i < 1000 && tables.tableStage(key).key !== 'complete'; i++) tables.buildTables(key, 1)
  expect(tables.tableStage(key).key).toBe('complete')
}

/**
 * Every Wycheproof ECDSA P-256 test on a key of its group brought to a stage by `prepare` (the
 * stage is checked before and after: nothing moves it while verifying, the schedule is frozen);
 * the wrong verdicts, and how many were checked.
 */
function wycheproofAt(stage: EcTableStage, prepare: (key: VerifyingKey) => void): { wrong: string[]; checked: number } {
  const wrong: string[] = []
  let checked = 0
  ecdsaFile.testGroups.forEach((group, g) => {
    const key = wasmBackend.importKey(material(ecJwk(group)))
    prepare(key)
    expect(tables.tableStage(key), `group ${g}`).toEqual(stage)
    for (const t of group.tests) {
      const accepted = key.verify(Buffer.from(t.msg, 'hex'), Buffer.from(t.sig, 'hex'))
      checked++
      if (accepted !== (t.result === 'valid')) wrong.push(`tcId ${t.tcId} (${t.result}, ${t.comment}): got ${accepted}`)
    }
    expect(tables.tableStage(key), `group ${g} after`).toEqual(stage)
    key.release()
  })
  return { wrong, checked }
}

const n = p256.Point.Fn.ORDER
const mod = (x: bigint) => ((x % n) + n) % n
const hex32 = (x: bigint) => x.toString(16).padStart(64, '0')
const toBig = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex')}`)

/** A generated key, both as the wasm backend and node:crypto see it, and its private scalar. */
function generatedKey(): { wasm: VerifyingKey; node: VerifyingKey; d: bigint; sign(m: Buffer): Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = privateKey.export({ format: 'jwk' })
  const m = material(publicKey.export({ format: 'jwk' }))
  return {
    wasm: wasmBackend.importKey(m),
    node: nodeBackend.importKey(m),
    d: toBig(Buffer.from(jwk.d!, 'base64url')),
    sign: (msg) => sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
  }
}

/**
 * Generated signatures on `keys` (valid, each with a bit flipped, its high-S twin, another
 * message) against node:crypto's verdict, and digests chosen so that the rare cases of the curve
 * arithmetic come up: u1 = 0, u1·G = u2·Q (a doubling inside an addition), u1·G + u2·Q = O.
 */
function generatedDisagreements(k: ReturnType<typeof generatedKey>, count: number): string[] {
  const wrong: string[] = []
  for (let i = 0; i < count; i++) {
    const msg = Buffer.from(`message ${i} ${Math.random()}`)
    const good = k.sign(msg)
    const r = toBig(good.subarray(0, 32))
    const s = toBig(good.subarray(32))
    const flipped = Buffer.from(good)
    flipped[i % 64]! ^= 1 << (i % 8)
    const highS = Buffer.from(hex32(r) + hex32(n - s), 'hex')
    for (const [what, input, sig] of [
      ['valid', msg, good],
      ['bit flipped', msg, flipped],
      ['high S', msg, highS],
      ['other message', Buffer.from(`${msg}!`), good],
    ] as const) {
      const expected = k.node.verify(input, sig)
      if (k.wasm.verify(input, sig) !== expected) wrong.push(`${what} #${i}: node says ${expected}`)
    }
  }
  // Chosen digests (as in test/wasm.test.ts): nonce t, r = x(t·G) mod n.
  const t = mod(toBig(createHash('sha256').update(`nonce ${Math.random()}`).digest())) || 3n
  const r = mod(p256.Point.BASE.multiply(t).toAffine().x)
  const inv = (x: bigint) => {
    let [a, b, u, v] = [mod(x), n, 1n, 0n]
    while (b !== 0n) {
      const q = a / b
      ;[a, b, u, v] = [b, a - q * b, v, u - q * v]
    }
    return mod(u)
  }
  const chosen: [string, bigint, bigint, boolean][] = [
    // e = 0: u1 = 0, only Q contributes; s = r·d / t.
    ['u1 = 0', 0n, mod(r * k.d * inv(t)), true],
    // e = r·d: u1·G = u2·Q = (t/2)·G; s = 2·r·d / t.
    ['u1·G = u2·Q', mod(r * k.d), mod(2n * r * k.d * inv(t)), true],
    // e = −r·d: the sum is the point at infinity, whatever s.
    ['sum at infinity', mod(-r * k.d), 12345n, false],
  ]
  for (const [what, e, sv, valid] of chosen) {
    const got = k.wasm.verifyDigest!(Buffer.from(hex32(e), 'hex'), Buffer.from(hex32(r) + hex32(sv), 'hex'))
    if (got !== valid) wrong.push(`${what}: got ${got}`)
  }
  return wrong
}

describe('wasm P-256 tables, stage by stage', () => {
  beforeAll(() => {
    // Frozen: only buildTables moves a stage, so each run below stays where it was put.
    tables.scheduleTables(Number.POSITIVE_INFINITY, 0)
  })
  afterAll(() => {
    tables.scheduleTables(16, 1)
  })

  const cold: EcTableStage = { key: 'none', generator: 'none' }
  let survivor: ReturnType<typeof generatedKey> | undefined

  it('starts from a module that has built no table', () => {
    survivor = generatedKey()
    expect(tables.tableStage(survivor.wasm)).toEqual(cold)
  })

  it('a fresh key, no generator table: Wycheproof and node:crypto agree', () => {
    expect(wycheproofAt(cold, () => undefined)).toEqual({ wrong: [], checked: 262 })
    expect(generatedDisagreements(survivor!, 24)).toEqual([])
  })

  it('a key with its table partly built: same answers; releasing it abandons the build', () => {
    const stage: EcTableStage = { key: 'building', generator: 'none' }
    expect(wycheproofAt(stage, (key) => tables.buildTables(key, 3))).toEqual({ wrong: [], checked: 262 })
    // Each group's key was released mid-build; had the builder kept it, this one could not start.
    const k = generatedKey()
    expect(tables.buildTables(k.wasm, 2)).toEqual(stage)
    expect(generatedDisagreements(k, 24)).toEqual([])
    k.wasm.release()
  })

  it('a key with its table complete, no generator table: same answers; memory grew by the table once', () => {
    const stage: EcTableStage = { key: 'complete', generator: 'none' }
    expect(wycheproofAt(stage, completeKeyTable)).toEqual({ wrong: [], checked: 262 })
    // The tables of released keys are taken again: a new key's table costs no new memory.
    const before = wasmMemoryBytes()
    completeKeyTable(survivor!.wasm)
    expect(wasmMemoryBytes()).toBe(before)
    expect(generatedDisagreements(survivor!, 24)).toEqual([])
  })

  it('the generator table partly built: same answers on fresh keys and on the key built before it', () => {
    const before = wasmMemoryBytes()
    expect(tables.buildTables(survivor!.wasm, 3)).toEqual({ key: 'complete', generator: 'building' })
    // Its slot was taken whole when it started (assembly/heap.ts): 5 MiB, to the page.
    const grew = wasmMemoryBytes() - before
    expect(grew).toBeGreaterThan(wasmKeyBytes().generator - 65_536)
    expect(grew).toBeLessThan(wasmKeyBytes().generator + 65_536)
    expect(wycheproofAt({ key: 'none', generator: 'building' }, () => undefined)).toEqual({ wrong: [], checked: 262 })
    expect(generatedDisagreements(survivor!, 24)).toEqual([])
    expect(tables.tableStage(survivor!.wasm)).toEqual({ key: 'complete', generator: 'building' })
  })

  it('both tables complete: same answers, from the tables; keys not yet hot still answer alike', () => {
    const before = wasmMemoryBytes()
    expect(tables.buildTables(survivor!.wasm, Number.POSITIVE_INFINITY)).toEqual({
      key: 'complete',
      generator: 'complete',
    })
    expect(wasmMemoryBytes()).toBe(before)
    expect(generatedDisagreements(survivor!, 48)).toEqual([])
    for (const [stage, prepare] of [
      [{ key: 'complete', generator: 'complete' }, completeKeyTable],
      [{ key: 'building', generator: 'complete' }, (key: VerifyingKey) => tables.buildTables(key, 5)],
      [{ key: 'none', generator: 'complete' }, () => undefined],
    ] as const) {
      expect(wycheproofAt(stage, prepare), `${stage.key}`).toEqual({ wrong: [], checked: 262 })
    }
    survivor!.wasm.release()
  })

  it('grows by one key table for a key turning hot when no table is free, and not when hot keys are replaced', () => {
    // Released keys' tables are taken first: hold hot keys until one needs new memory.
    const held: ReturnType<typeof generatedKey>[] = []
    let grew = 0
    while (grew === 0 && held.length < 64) {
      const before = wasmMemoryBytes()
      held.push(generatedKey())
      completeKeyTable(held.at(-1)!.wasm)
      grew = wasmMemoryBytes() - before
    }
    const table = wasmKeyBytes().es256 - wasmKeyBytes().es256Cold
    expect(grew).toBeGreaterThan(table - 65_536)
    expect(grew).toBeLessThan(table + 65_536)
    const peak = wasmMemoryBytes()
    held.shift()!.wasm.release()
    const next = generatedKey()
    completeKeyTable(next.wasm)
    expect(wasmMemoryBytes()).toBe(peak)
    expect(generatedDisagreements(next, 8)).toEqual([])
    for (const k of [...held, next]) k.wasm.release()
  })
})

describe('wasm P-256 tables on the default schedule', () => {
  it('a key turns hot by being verified, its table comes a chunk per verification, every answer right', () => {
    tables.scheduleTables(16, 1)
    const k = generatedKey()
    const seen: string[] = []
    const wrong: string[] = []
    for (let i = 0; i < 2000; i++) {
      const msg = Buffer.from(`hot ${i}`)
      const sig = k.sign(msg)
      if (i % 3 === 2) sig[i % 64]! ^= 1
      if (k.wasm.verify(msg, sig) !== (i % 3 !== 2)) wrong.push(`#${i}`)
      const stage = tables.tableStage(k.wasm).key
      if (seen.at(-1) !== stage) seen.push(stage)
      if (stage === 'complete') break
    }
    expect(wrong).toEqual([])
    // The generator's table was completed above; here the key goes through its own stages.
    expect(seen).toEqual(['none', 'building', 'complete'])
    k.wasm.release()
  })

  it('accepts the one-call mandate during whose verification memory grows for a table', async () => {
    // Every free table slot taken, so that the next key's table has to grow memory.
    const held: ReturnType<typeof generatedKey>[] = []
    for (let grown = false; !grown && held.length < 64; ) {
      const before = wasmMemoryBytes()
      held.push(generatedKey())
      completeKeyTable(held.at(-1)!.wasm)
      grown = wasmMemoryBytes() > before
    }
    const signer = generateSigningKey('ES256', 'grows')
    const auth = new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations: new InMemoryRevocationStore(),
      backend: 'wasm',
      cache: false,
      now: () => NOW_MS,
      jwks: { keys: [signer.publicJwk] },
    })
    tables.scheduleTables(1, 1) // hot at its first verification: its table is taken then
    try {
      const before = wasmMemoryBytes()
      await expect(auth.verify(mint({ sub: 'grown' }, signer))).resolves.toMatchObject({ sub: 'grown' })
      expect(wasmMemoryBytes()).toBeGreaterThan(before)
      await expect(auth.verify(mint({ sub: 'after' }, signer))).resolves.toMatchObject({ sub: 'after' })
    } finally {
      tables.scheduleTables(16, 1)
      await auth.close()
      for (const k of held) k.wasm.release()
    }
  })
})
