// The baseline echo server for the server benchmark: `Deno.serve` + `Deno.upgradeWebSocket`, in a
// process of its own, as `wsbeat serve` ran before the protocol core. Text is echoed as text,
// binary as binary. Prints `listening URL` on stdout; stops on SIGTERM.
//
// Usage: deno run --allow-net=127.0.0.1 bench/_deno_serve.ts

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("a WebSocket echo server\n", { status: 426 });
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => socket.send(event.data);
  socket.onerror = () => {};
  return response;
});
const onTerm = () => {
  Deno.removeSignalListener("SIGTERM", onTerm);
  void server.shutdown(); // the process then ends on its own (a --cpu-prof profile is written)
  Deno.unrefTimer(setTimeout(() => Deno.exit(0), 1000));
};
Deno.addSignalListener("SIGTERM", onTerm);
console.log(`listening ws://127.0.0.1:${server.addr.port}`);
