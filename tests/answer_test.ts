// answer: a server that sends its own application pings ({"ping": n}, some gzip-compressed, as
// HTX and Huobi do) and closes a client that does not reply {"pong": n} in time. The replies go
// out from the receive path, in order, while the application does not read at all.

import assert from "node:assert/strict";
import { connect, type Message } from "../mod.ts";

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array): Promise<string> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

/**
 * A feed that sends `{"ping": n}` every 20 ms (every other one gzip-compressed), one data
 * message between pings, and closes with 4000 when a ping is not answered within 100 ms.
 */
function pingingFeed(pings: number) {
  const pongs: number[] = [];
  const { promise: done, resolve } = Promise.withResolvers<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    let n = 0;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    let timer: ReturnType<typeof setInterval> | undefined;
    const stop = () => {
      clearInterval(timer);
      clearTimeout(deadline);
    };
    socket.onopen = () => {
      timer = setInterval(async () => {
        if (n === pings) {
          stop();
          resolve("all answered");
          return;
        }
        n++;
        const ping = JSON.stringify({ ping: n });
        socket.send(n % 2 === 0 ? await gzip(ping) : ping);
        socket.send(JSON.stringify({ data: n }));
        const sent = n;
        deadline ??= setTimeout(() => {
          stop();
          resolve(`ping ${sent} not answered`);
          socket.close(4000, "no pong");
        }, 100);
      }, 20);
    };
    socket.onmessage = (event) => {
      const pong = JSON.parse(event.data).pong;
      pongs.push(pong);
      if (pong === n) {
        clearTimeout(deadline);
        deadline = undefined;
      }
    };
    socket.onclose = stop;
    return response;
  });
  return { url: `ws://127.0.0.1:${server.addr.port}`, pongs, done, server };
}

Deno.test("answer replies to the server's pings while the application reads nothing", async (t) => {
  for (const transport of ["wsbeat", "native"] as const) {
    await t.step(transport, async () => {
      const feed = pingingFeed(8);
      const ws = await connect(feed.url, {
        transport,
        answer: async (message: Message) => {
          const text = typeof message === "string" ? message : await gunzip(message);
          const ping = JSON.parse(text).ping;
          return ping === undefined ? undefined : JSON.stringify({ pong: ping });
        },
      });
      assert.equal(await feed.done, "all answered"); // the application has read nothing yet
      assert.equal(ws.state, "open");
      assert.deepEqual(feed.pongs, [1, 2, 3, 4, 5, 6, 7, 8]); // in order
      const delivered: string[] = [];
      while (ws.unread > 0) delivered.push(await ws.receive() as string);
      const data = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => JSON.stringify({ data: n }));
      assert.deepEqual(delivered, data);
      await ws.close();
      await feed.server.shutdown();
    });
  }
});

Deno.test("connect() without answer: the same feed closes the connection at its first ping", async () => {
  const feed = pingingFeed(8);
  const ws = await connect(feed.url);
  assert.equal(await feed.done, "ping 1 not answered");
  const info = await ws.closed;
  assert.equal(info.code, 4000);
  await feed.server.shutdown();
});

Deno.test("answer: a throw delivers the message, and order is kept behind an async answer", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => ["slow", "a", "boom", "b"].forEach((m) => socket.send(m));
    socket.onmessage = (event) => socket.send(`echo ${event.data}`);
    return response;
  });
  const ws = await connect(`ws://127.0.0.1:${server.addr.port}`, {
    answer: (message) => {
      if (message === "slow") return new Promise((r) => setTimeout(() => r("late reply"), 30));
      if (message === "boom") throw new Error("bug");
      return undefined;
    },
  });
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await ws.receive());
  assert.deepEqual(got, ["a", "boom", "b", "echo late reply"]);
  await ws.close();
  await server.shutdown();
});
