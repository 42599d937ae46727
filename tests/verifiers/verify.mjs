// Verify a token the way a Node backend using npm `jose` (v6) would.
// stdin: {"token", "secret", "alg": "HS256"|"HS512", "kind": "reqio"|"reditus", "audience"?}
// stdout: one JSON line {"ok": true, "claims", "header"} or {"ok": false, "error"};
// exit 0 accepted, 1 rejected, 2 usage error. jose is found under $REQIO_JOSE_DIR/node_modules.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = code;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;

let jose;
try {
  const dir = process.env.REQIO_JOSE_DIR;
  if (!dir) throw new Error("REQIO_JOSE_DIR is not set");
  const entry = createRequire(join(dir, "/")).resolve("jose");
  jose = await import(pathToFileURL(entry).href);
} catch (err) {
  finish({ ok: false, error: `cannot load jose: ${err.message}` }, 2);
}

if (jose) {
  const req = JSON.parse(input);
  const key = new TextEncoder().encode(req.secret);
  const options =
    req.kind === "reditus"
      ? { algorithms: ["HS512"], requiredClaims: ["ProductId", "UserId", "iat"] }
      : { algorithms: [req.alg], audience: req.audience, requiredClaims: ["sub", "iat", "exp"] };
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(req.token, key, options);
    // jose checks sub's type only when `subject` is given; a backend reads it as a string.
    const id = req.kind === "reditus" ? payload.UserId : payload.sub;
    if (typeof id !== "string") throw new Error(`user id is a ${typeof id}, not a string`);
    finish({ ok: true, claims: payload, header: protectedHeader }, 0);
  } catch (err) {
    finish({ ok: false, error: `${err.code || err.name}: ${err.message}` }, 1);
  }
}
