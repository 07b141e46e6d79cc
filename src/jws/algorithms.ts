/**
 * The one table of algorithms. Nothing else in the library enumerates algorithms: backends, the
 * JWKS loader and the parser all consult this table (README "What is checked"). Only ES256 and RS256 exist here; a
 * token naming anything else (none, HS*, PS*, EdDSA, …) is rejected before any key is looked at.
 */
export type Algorithm = 'ES256' | 'RS256'

export interface AlgorithmSpec {
  readonly name: Algorithm
  readonly kty: 'EC' | 'RSA'
  /** EC only: the one curve this algorithm is bound to. */
  readonly crv?: 'P-256'
  /** Fixed signature length in bytes; RSA signatures are as long as the modulus. */
  readonly signatureBytes?: number
  /** RSA only: accepted modulus sizes (RFC 7518 §3.3 sets 2048 as the floor). */
  readonly minModulusBits?: number
  readonly maxModulusBits?: number
}

export const ALGORITHMS: Readonly<Record<Algorithm, AlgorithmSpec>> = Object.freeze({
  ES256: Object.freeze({ name: 'ES256', kty: 'EC', crv: 'P-256', signatureBytes: 64 }),
  RS256: Object.freeze({ name: 'RS256', kty: 'RSA', minModulusBits: 2048, maxModulusBits: 8192 }),
})

export const ALL_ALGORITHMS: readonly Algorithm[] = Object.freeze(Object.keys(ALGORITHMS) as Algorithm[])

export function isAlgorithm(value: unknown): value is Algorithm {
  return typeof value === 'string' && Object.hasOwn(ALGORITHMS, value)
}

/** The algorithm a key of this type can serve, or undefined: a key is tied to exactly one. */
export function algorithmForKeyType(kty: unknown, crv: unknown): Algorithm | undefined {
  for (const spec of Object.values(ALGORITHMS)) {
    if (spec.kty === kty && (spec.crv === undefined || spec.crv === crv)) return spec.name
  }
  return undefined
}
