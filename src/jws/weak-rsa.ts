/**
 * Known-weak RSA moduli, refused at import (README "Keys (JWKS)"). A public key alone cannot prove a
 * modulus strong, but two classes of weakness show in it and are cheap to test once per key:
 *
 * - a small prime factor: a modulus divisible by a prime below `SMALL_PRIME_LIMIT` is factored by
 *   trial division, so anyone can sign with it;
 * - the ROCA fingerprint (CVE-2017-15361; Nemec et al., "The Return of Coppersmith's Attack", CCS
 *   2017): the affected generator built each prime as `k·M + (65537^a mod M)`, M the product of
 *   the first primes, so the modulus is, modulo each small prime p of M, a power of 65537. Such
 *   moduli are factorable. A random modulus passes all 38 residue tests with probability
 *   ∏ ord_p(65537)/(p − 1) ≈ 2^-27.8: about one honest key in 2·10⁸ is refused, which costs its
 *   owner a new key and nobody their safety.
 */

/** Trial division up to this bound: the 3 511 odd primes below 2^15 (about 0.5 ms per 2048-bit key). */
const SMALL_PRIME_LIMIT = 1 << 15

/** The primes of the generator's M that the fingerprint is tested against (all primes up to 167, 2 aside). */
const ROCA_PRIME_LIMIT = 167

const ROCA_GENERATOR = 65_537

/** Odd primes below `limit`, by a sieve. */
function oddPrimesBelow(limit: number): number[] {
  const composite = new Uint8Array(limit)
  const primes: number[] = []
  for (let i = 3; i < limit; i += 2) {
    if (composite[i] === 1) continue
    primes.push(i)
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1
  }
  return primes
}

interface RocaResidues {
  readonly prime: number
  /** `powers[r] === 1` when r is a power of 65537 modulo `prime`. */
  readonly powers: Uint8Array
}

let tables: { readonly smallPrimes: readonly number[]; readonly roca: readonly RocaResidues[] } | undefined

/** Built on the first RSA key, not at load: most gateways never see one. */
function getTables(): NonNullable<typeof tables> {
  if (tables !== undefined) return tables
  const smallPrimes = oddPrimesBelow(SMALL_PRIME_LIMIT)
  const roca = smallPrimes
    .filter((p) => p <= ROCA_PRIME_LIMIT)
    .map((prime) => {
      const powers = new Uint8Array(prime)
      const g = ROCA_GENERATOR % prime
      for (let r = 1; powers[r] !== 1; r = (r * g) % prime) powers[r] = 1
      return { prime, powers }
    })
  tables = { smallPrimes, roca }
  return tables
}

/** A big-endian byte string as a BigInt (once per key). */
function toBigInt(n: Uint8Array): bigint {
  let hex = ''
  for (let i = 0; i < n.length; i++) hex += n[i]!.toString(16).padStart(2, '0')
  return hex === '' ? 0n : BigInt(`0x${hex}`)
}

/**
 * The primes in groups whose product stays below 2^53, so that after one BigInt remainder per
 * group every prime of it is a remainder of doubles: ~1 200 BigInt operations per key instead of a
 * byte loop per prime.
 */
let groups: { readonly product: bigint; readonly primes: readonly number[] }[] | undefined

function primeGroups(primes: readonly number[]): NonNullable<typeof groups> {
  if (groups !== undefined) return groups
  groups = []
  let current: number[] = []
  let product = 1
  for (const p of primes) {
    if (product * p >= 2 ** 53) {
      groups.push({ product: BigInt(product), primes: current })
      current = []
      product = 1
    }
    current.push(p)
    product *= p
  }
  if (current.length > 0) groups.push({ product: BigInt(product), primes: current })
  return groups
}

const SMALL_FACTOR = 'modulus has a small prime factor'
const ROCA = 'modulus has the ROCA fingerprint (CVE-2017-15361)'

/** Whether an import refusal names one of these weaknesses (worth a warning: the signer is broken). */
export function isWeakKeyReason(reason: string): boolean {
  return reason === SMALL_FACTOR || reason === ROCA
}

/** Why this modulus (big-endian, no leading zeros) must not be trusted, or undefined. */
export function weakModulusReason(n: Uint8Array): string | undefined {
  const { smallPrimes, roca } = getTables()
  const value = toBigInt(n)
  for (const { product, primes } of primeGroups(smallPrimes)) {
    const r = Number(value % product)
    for (const p of primes) if (r % p === 0) return SMALL_FACTOR
  }
  for (const { prime, powers } of roca) if (powers[Number(value % BigInt(prime))] !== 1) return undefined
  return ROCA
}
