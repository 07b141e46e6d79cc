/** Bun, cold start: a server whose modules import nothing of the library until its request. */
import { listenOnBun } from './bun-listen.js'
import { serveCold } from './cold.js'

listenOnBun(serveCold)
