// A whole ACP session as the official TypeScript SDK's client side drives it: initialize, session/new, one
// prompt, every session/update in order, permission answered with the option named by --decision, fs served from
// the disk. Prints one JSON object (the protocol traffic, the updates, the stop reason) on stdout.
//   node acp_client.mjs --cwd DIR --decision apply|discard|cancelled -- COMMAND ARGS...
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const option = (name) => argv[argv.indexOf(name) + 1];
const [command, ...args] = argv.slice(split + 1);
const cwd = option("--cwd");
const decision = option("--decision");

const agent = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
const stream = acp.ndJsonStream(Writable.toWeb(agent.stdin), Readable.toWeb(agent.stdout));
const seen = { permissions: [], writes: [], reads: [], updates: [] };

const app = acp
  .client({ name: "semcoder-tests-ts" })
  .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
    seen.permissions.push({ toolCall: params.toolCall, options: params.options.map((o) => o.optionId) });
    if (decision === "cancelled") return { outcome: { outcome: "cancelled" } };
    return { outcome: { outcome: "selected", optionId: decision } };
  })
  .onRequest(acp.methods.client.fs.readTextFile, async ({ params }) => {
    seen.reads.push(params.path);
    return { content: readFileSync(params.path, "utf8") };
  })
  .onRequest(acp.methods.client.fs.writeTextFile, async ({ params }) => {
    seen.writes.push(params.path);
    writeFileSync(params.path, params.content);
    return {};
  });

const result = await app.connectWith(stream, async (ctx) => {
  const init = await ctx.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: { fs: { readTextFile: true, writeTextFile: true } },
    clientInfo: { name: "semcoder-tests-ts", version: "1" },
  });
  return await ctx.buildSession(cwd).withSession(async (session) => {
    const prompting = session.prompt("fix the failing tests");
    for (;;) {
      const message = await session.nextUpdate();
      if (message.kind === "stop") {
        await prompting;
        return { agentInfo: init.agentInfo, sessionId: session.sessionId, stopReason: message.stopReason };
      }
      seen.updates.push(message.update);
    }
  });
});
agent.stdin.end();
process.stdout.write(JSON.stringify({ ...result, ...seen }) + "\n");
