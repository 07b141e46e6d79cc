/** Bun: `Bun.serve` on a port Bun picks, announced on stdout as one JSON line. */
import { serve } from './server.js'

declare const Bun: {
  serve(options: { port: number; hostname: string; fetch: (request: Request) => Promise<Response> }): { port: number }
}

const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: serve })
console.log(JSON.stringify({ listening: server.port }))
