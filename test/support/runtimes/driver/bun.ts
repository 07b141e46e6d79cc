/** Bun: the driver's server (server.ts) on `Bun.serve`. */
import { listenOnBun } from './bun-listen.js'
import { serve } from './server.js'

listenOnBun(serve)
