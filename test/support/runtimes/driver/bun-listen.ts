/** Bun: `Bun.serve` on a port Bun picks, announced on stdout as one JSON line. */
declare const Bun: {
  serve(options: { port: number; hostname: string; fetch: (request: Request) => Promise<Response> }): { port: number }
}

export function listenOnBun(handler: (request: Request) => Promise<Response>): void {
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: handler })
  console.log(JSON.stringify({ listening: server.port }))
}
