#!/usr/bin/env node
// A real OpenID Connect provider for the console's end-to-end tests:
// panva's oidc-provider (an OpenID-certified implementation), never a mock.
//
//   node e2e/oidc-provider.mjs --console-origin http://127.0.0.1:PORT \
//     --audience fangpin --accounts '{"county-officer":{"role":"county_office","counties":["130421"]}}' \
//     --jwks-out /tmp/jwks.json [--resource URI]
//
// It listens on 127.0.0.1, port 0, generates an RSA signing key at start,
// writes the PUBLIC JWK set to --jwks-out (fangpind's auth.jwks_file), prints
// exactly one line `issuer http://127.0.0.1:<port>` on stdout and runs until
// killed. Client `fangpin-console`: public (token_endpoint_auth_method none),
// PKCE required, redirect URI <console-origin>/console/, authorization code.
// Access tokens are JWTs (RS256) for the audience, one hour at most, with the
// account's role, counties, village, township and insurer as claims. Sign-in
// is the provider's own development pages (any password); the consent of
// scope "openid fangpin" is granted without a page (loadExistingGrant).
// Log lines go to stderr.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import Provider from "oidc-provider";

const { values: args } = parseArgs({
  options: {
    "console-origin": { type: "string" },
    audience: { type: "string" },
    accounts: { type: "string" },
    "jwks-out": { type: "string" },
    resource: { type: "string" },
    "token-ttl": { type: "string", default: "3600" },
  },
  strict: true,
});

function isUrl(s) {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

function fail(message) {
  process.stderr.write(`oidc-provider.mjs: ${message}\n`);
  process.exit(2);
}

const consoleOrigin = args["console-origin"];
const audience = args.audience;
if (!consoleOrigin || !isUrl(consoleOrigin)) fail("--console-origin http://127.0.0.1:PORT is required");
if (!audience) fail("--audience is required");
if (!args["jwks-out"]) fail("--jwks-out PATH is required");
let accounts;
try {
  accounts = JSON.parse(args.accounts ?? "");
} catch (e) {
  fail(`--accounts must be a JSON object from login to claims: ${e.message}`);
}
if (!accounts || typeof accounts !== "object" || Array.isArray(accounts)) fail("--accounts must be a JSON object");
const ttl = Number(args["token-ttl"]);
if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 3600) fail("--token-ttl must be 1..3600 seconds");

// RFC 8707 resource indicators are absolute URIs; an audience that is not one
// ("fangpin") is named urn:fangpin:<audience>. Every resource indicator the
// console may send maps to the one audience.
const defaultResource = args.resource ?? (isUrl(audience) ? audience : `urn:fangpin:${audience}`);
const origin = new URL(consoleOrigin).origin;

// The signing key, fresh at every start.
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const kid = randomUUID();
const privateJwk = { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
const publicJwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
writeFileSync(args["jwks-out"], JSON.stringify({ keys: [publicJwk] }, null, 2) + "\n", { mode: 0o644 });

const SCOPE_CLAIMS = ["role", "counties", "village", "township", "insurer"];

function tokenClaimsOf(accountId) {
  const a = accounts[accountId];
  if (!a) return undefined;
  const out = {};
  // Only the claims the account has: a scope claim the role does not use
  // makes the token invalid for fangpind, so none is sent empty.
  for (const k of SCOPE_CLAIMS) if (a[k] !== undefined && a[k] !== null) out[k] = a[k];
  return out;
}

const configuration = {
  clients: [
    {
      client_id: "fangpin-console",
      application_type: "web",
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      redirect_uris: [`${origin}/console/`],
      post_logout_redirect_uris: [`${origin}/console/`],
    },
  ],
  jwks: { keys: [privateJwk] },
  // "fangpin" is the resource server's scope (getResourceServerInfo), not an OP scope.
  scopes: ["openid"],
  claims: { openid: ["sub"] },
  pkce: { required: () => true },
  ttl: {
    AccessToken: ttl,
    AuthorizationCode: 60,
    IdToken: ttl,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => defaultResource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: "fangpin",
        audience,
        accessTokenTTL: ttl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  async findAccount(_ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, claims: async () => ({ sub: id }) };
  },
  async extraTokenClaims(_ctx, token) {
    if (token.kind !== "AccessToken") return undefined;
    return tokenClaimsOf(token.accountId);
  },
  // The test's consent: scope "openid fangpin" for the console, on the
  // resource, granted once the user has signed in.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    if (ctx.oidc.client.clientId !== "fangpin-console" || !ctx.oidc.session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid");
    const requested = ctx.oidc.params?.resource;
    const resources = new Set([defaultResource, ...(Array.isArray(requested) ? requested : requested ? [requested] : [])]);
    for (const r of resources) grant.addResourceScope(r, "fangpin");
    await grant.save();
    return grant;
  },
  clientBasedCORS(_ctx, requestOrigin) {
    return requestOrigin === origin;
  },
  // Error pages in plain text on stderr too, for the test's log.
  async renderError(ctx, out) {
    process.stderr.write(`oidc-provider.mjs: error ${JSON.stringify(out)}\n`);
    ctx.type = "html";
    ctx.body = `<!doctype html><meta charset="utf-8"><title>oidc error</title><pre id="oidc-error">${String(out.error).replace(/[<&]/g, "")}: ${String(out.error_description ?? "").replace(/[<&]/g, "")}</pre>`;
  },
};

// The issuer is known only once the port is: listen first, then build.
import { createServer } from "node:http";
const server = createServer();
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, configuration);
// Plain http on the loopback: cookies without Secure are what a browser
// keeps there; oidc-provider sets Secure only when ctx.secure.
provider.on("server_error", (_ctx, err) => process.stderr.write(`oidc-provider.mjs: server_error ${err.stack}\n`));
provider.on("grant.error", (_ctx, err) => process.stderr.write(`oidc-provider.mjs: grant.error ${err.message} ${err.error_description ?? ""}\n`));
provider.on("authorization.error", (_ctx, err) => process.stderr.write(`oidc-provider.mjs: authorization.error ${err.message} ${err.error_description ?? ""}\n`));
server.on("request", provider.callback());

process.stdout.write(`issuer ${issuer}\n`);
process.stderr.write(`oidc-provider.mjs: client fangpin-console, redirect ${origin}/console/, audience ${audience}, resource ${defaultResource}, accounts ${Object.keys(accounts).join(", ")}\n`);

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
