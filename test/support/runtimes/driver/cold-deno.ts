/** Deno, cold start: a server whose modules import nothing of the library until its request. */
import { serveCold } from './cold.js'
import { listenOnDeno } from './deno-listen.js'

listenOnDeno(serveCold)
