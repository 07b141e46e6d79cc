/** Deno: `Deno.serve` on a port Deno picks, announced on stdout as one JSON line. */
declare const Deno: {
  serve(
    options: { port: number; hostname: string; onListen(address: { port: number }): void },
    handler: (request: Request) => Promise<Response>,
  ): unknown
}

export function listenOnDeno(handler: (request: Request) => Promise<Response>): void {
  Deno.serve(
    { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => console.log(JSON.stringify({ listening: port })) },
    handler,
  )
}
