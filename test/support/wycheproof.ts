/**
 * The conformance vectors of test/vectors/ as the tests read them: Wycheproof ECDSA P-256 (P1363)
 * and RSA-2048 PKCS#1 v1.5 cases, each with its key as a JWK (test/vectors.test.ts runs them on
 * every backend, test/wasm-tables.test.ts on the wasm backend at each stage of its tables).
 */
import { readFileSync } from 'node:fs'

/** Copied byte for byte into the repository (test/vectors/*: where each came from, and its licence). */
export const VECTORS = new URL('../vectors/', import.meta.url)

export interface WycheproofTest {
  tcId: number
  comment: string
  msg: string
  sig: string
  result: 'valid' | 'invalid' | 'acceptable'
}
export interface WycheproofGroup {
  publicKeyJwk?: JsonWebKey
  keyJwk?: JsonWebKey
  publicKey: { uncompressed?: string }
  tests: WycheproofTest[]
}
export interface WycheproofFile {
  numberOfTests: number
  testGroups: WycheproofGroup[]
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, VECTORS), 'utf8')) as T
}

/** The 9 groups without publicKeyJwk: the JWK from the fixed-width `04 ‖ X ‖ Y` point. */
export function ecJwk(group: WycheproofGroup): JsonWebKey {
  if (group.publicKeyJwk !== undefined) return group.publicKeyJwk
  const point = Buffer.from(group.publicKey.uncompressed!, 'hex')
  if (point.length !== 65 || point[0] !== 4) throw new Error('unexpected uncompressed point')
  return {
    kty: 'EC',
    crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33).toString('base64url'),
  }
}

export interface Case {
  tcId: number
  comment: string
  jwk: JsonWebKey
  msg: Uint8Array
  sig: Uint8Array
  result: WycheproofTest['result']
}

function cases(file: WycheproofFile, jwkOf: (g: WycheproofGroup) => JsonWebKey): Case[] {
  return file.testGroups.flatMap((g) =>
    g.tests.map((t) => ({
      tcId: t.tcId,
      comment: t.comment,
      jwk: jwkOf(g),
      result: t.result,
      msg: Buffer.from(t.msg, 'hex'),
      sig: Buffer.from(t.sig, 'hex'),
    })),
  )
}

export const ecdsaFile = readJson<WycheproofFile>('wycheproof/ecdsa_secp256r1_sha256_p1363_test.json')
export const rsaFile = readJson<WycheproofFile>('wycheproof/rsa_signature_2048_sha256_test.json')
export const ecdsaCases = cases(ecdsaFile, ecJwk)
export const rsaCases = cases(rsaFile, (g) => g.keyJwk!)
