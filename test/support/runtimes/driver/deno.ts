/** Deno: the driver's server (server.ts) on `Deno.serve`. */
import { listenOnDeno } from './deno-listen.js'
import { serve } from './server.js'

listenOnDeno(serve)
