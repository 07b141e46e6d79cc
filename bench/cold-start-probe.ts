/**
 * One fresh process of the cold-start bench (bench/cold-start.ts): the CPU (user + system, all of
 * the process's threads, as an edge runtime bills an isolate) of loading the wasm backend,
 * compiling and instantiating the module, importing an ES256 key and each verification from the
 * first until the key's and the generator's tables are complete and some after. Everything it
 * verifies is prepared before anything is measured; every 4th signature has a bit flipped and
 * must be refused. Prints one JSON line (`ProbeResult`). Argument: the most verifications to run.
 */
import { generateKeyPairSync, sign } from 'node:crypto'

export interface ProbeResult {
  /** Importing the backend's JavaScript (from source under tsx, this includes transpiling). */
  readonly jsImportMs: number
  /** Reading, compiling and instantiating the module. */
  readonly loadMs: number
  readonly keyImportMs: number
  /** Verifications in order, the first one first. */
  readonly verifyMs: readonly number[]
  /** How many verifications had run when both tables were complete (null: not within the run). */
  readonly steadyAfter: number | null
  /** Verdicts that were not what the signature is (valid accepted, tampered refused). */
  readonly wrong: number
}

/** Verifications run after the tables are complete: the steady state. */
const AFTER_STEADY = 100

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const max = Number(process.argv[2] ?? 2000)
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const jwk = publicKey.export({ format: 'jwk' })
const header = Buffer.from('{"alg":"ES256","kid":"cold"}').toString('base64url')
const inputs: Buffer[] = []
const signatures: Buffer[] = []
for (let i = 0; i < max; i++) {
  const input = Buffer.from(`${header}.${Buffer.from(`{"jti":"${i}"}`).toString('base64url')}`, 'latin1')
  const signature = sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' })
  if (i % 4 === 3) signature[i % 64]! ^= 1 << (i % 8)
  inputs.push(input)
  signatures.push(signature)
}

let t = cpuMs()
const { wasmBackend, wasmInternalsForTests, wasmUnavailableReason } = await import('../src/backends/wasm.js')
const { readPublicKey } = await import('../src/jws/public-key.js')
const jsImportMs = cpuMs() - t

t = cpuMs()
const reason = wasmUnavailableReason()
const loadMs = cpuMs() - t
if (reason !== undefined) throw new Error(reason)

t = cpuMs()
const material = readPublicKey('ES256', jwk)
if (typeof material === 'string') throw new Error(material)
const key = wasmBackend.importKey(material)
const keyImportMs = cpuMs() - t

const verifyMs: number[] = []
let steadyAfter: number | null = null
let wrong = 0
for (let i = 0; i < max; i++) {
  const input = inputs[i]!
  const signature = signatures[i]!
  t = cpuMs()
  const accepted = key.verify(input, signature)
  verifyMs.push(cpuMs() - t)
  if (accepted !== (i % 4 !== 3)) wrong++
  if (steadyAfter === null) {
    const stage = wasmInternalsForTests.tableStage(key)
    if (stage.key === 'complete' && stage.generator === 'complete') steadyAfter = i + 1
  } else if (i + 1 >= steadyAfter + AFTER_STEADY) {
    break
  }
}
const result: ProbeResult = { jsImportMs, loadMs, keyImportMs, verifyMs, steadyAfter, wrong }
console.log(JSON.stringify(result))
