/** Deno: `Deno.serve` on a port Deno picks, announced on stdout as one JSON line. */
import { serve } from './server.js'

declare const Deno: {
  serve(
    options: { port: number; hostname: string; onListen(address: { port: number }): void },
    handler: (request: Request) => Promise<Response>,
  ): unknown
}

Deno.serve(
  { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => console.log(JSON.stringify({ listening: port })) },
  serve,
)
