// Sign-in. Development mode: no sign-in, calls carry x-fangpin-actor.
// OpenID Connect: authorization code with PKCE, a public client
// (token_endpoint_auth_method none). The tokens live in memory only; the
// PKCE verifier, state and the page to come back to live in sessionStorage
// between the redirect and the callback, and are deleted right after.
import * as oauth from "oauth4webapi";

export type ConsoleConfig =
  | { auth: "development" }
  | { auth: "oidc"; issuer: string; client_id: string; scope?: string | null; resource?: string | null };

export interface Identity {
  mode: "development" | "oidc";
  sub: string;
  role: string;
  counties: string[];
  village?: string;
  township?: string;
  insurer?: string;
  /** Seconds since the epoch; 0 in development mode. */
  exp: number;
}

interface Session {
  config: ConsoleConfig;
  identity: Identity;
  accessToken?: string;
  idToken?: string;
  endSession?: string;
}

let session: Session | null = null;

const PENDING = "fangpin.console.pkce";

export function current(): Session | null {
  return session;
}

export function accessToken(): string | undefined {
  return session?.accessToken;
}

export const DEV_ACTOR = "console-dev";

export function redirectUri(): string {
  return location.origin + "/console/";
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch("/console/config.json", { cache: "no-store", credentials: "same-origin" });
  if (!res.ok) throw new Error(`读取 /console/config.json 失败：HTTP ${res.status}`);
  const c = (await res.json()) as ConsoleConfig | { auth: "not_configured"; message?: string };
  if (c.auth === "not_configured") throw new Error(c.message || "本服务要求令牌，但未配置控制台登录");
  if (c.auth !== "development" && c.auth !== "oidc") throw new Error(`config.json 的 auth 无效：${String((c as { auth: unknown }).auth)}`);
  if (c.auth === "oidc" && (!c.issuer || !c.client_id)) throw new Error("config.json 缺少 issuer 或 client_id");
  return c;
}

/**
 * The RFC 8707 resource indicator to send: `resource` when it is an
 * absolute URI without a fragment, as the RFC requires (a provider refuses
 * anything else with invalid_target); otherwise none, and the provider's
 * default resource applies (fangpind still checks the token's audience).
 */
export function resourceIndicator(c: { resource?: string | null }): string | undefined {
  const r = c.resource;
  if (!r || !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(r) || r.includes("#")) return undefined;
  try {
    new URL(r);
    return r;
  } catch {
    return undefined;
  }
}

/** Plain http is accepted only for an issuer on the loopback (tests). */
function insecureOk(issuer: URL): boolean {
  return issuer.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
}

async function discover(c: Extract<ConsoleConfig, { auth: "oidc" }>) {
  const issuer = new URL(c.issuer);
  const opts = insecureOk(issuer) ? { algorithm: "oidc" as const, [oauth.allowInsecureRequests]: true } : { algorithm: "oidc" as const };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
  return { as, insecure: insecureOk(issuer) };
}

function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1];
  if (!part) throw new Error("访问令牌不是 JWT");
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

function identityOf(token: string): Identity {
  const p = decodeJwtPayload(token);
  const str = (k: string) => (typeof p[k] === "string" ? (p[k] as string) : undefined);
  const counties = Array.isArray(p.counties) ? p.counties.filter((x): x is string => typeof x === "string") : [];
  return {
    mode: "oidc",
    sub: str("sub") ?? "",
    role: str("role") ?? "",
    counties,
    village: str("village"),
    township: str("township"),
    insurer: str("insurer"),
    exp: typeof p.exp === "number" ? p.exp : 0,
  };
}

/** The county a page opens with: the token's first, or the one its village or township lies in. */
export function defaultCounty(id: Identity): string {
  return id.counties[0] ?? id.village?.slice(0, 6) ?? id.township?.slice(0, 6) ?? "";
}

/**
 * Establishes the session: development mode at once; OIDC from the
 * callback's code when the URL carries one, else by redirecting to the
 * provider. Returns false when the page is about to navigate away.
 */
export async function signIn(config: ConsoleConfig): Promise<boolean> {
  if (config.auth === "development") {
    session = { config, identity: { mode: "development", sub: DEV_ACTOR, role: "", counties: [], exp: 0 } };
    return true;
  }
  const { as, insecure } = await discover(config);
  const client: oauth.Client = { client_id: config.client_id };
  const here = new URL(location.href);
  const pendingText = sessionStorage.getItem(PENDING);
  if (pendingText && (here.searchParams.has("code") || here.searchParams.has("error"))) {
    sessionStorage.removeItem(PENDING);
    const pending = JSON.parse(pendingText) as { verifier: string; state: string; back: string };
    // The callback's query must not stay in the address bar or history.
    history.replaceState(null, "", "/console/" + (pending.back || "#/"));
    const params = oauth.validateAuthResponse(as, client, here, pending.state);
    const extra = new URLSearchParams();
    const resource = resourceIndicator(config);
    if (resource) extra.set("resource", resource);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri(), pending.verifier, {
      additionalParameters: extra,
      ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    });
    const result = await oauth.processAuthorizationCodeResponse(as, client, response);
    session = {
      config,
      identity: identityOf(result.access_token),
      accessToken: result.access_token,
      idToken: result.id_token,
      endSession: as.end_session_endpoint,
    };
    return true;
  }
  await redirectToProvider(config, as);
  return false;
}

async function redirectToProvider(config: Extract<ConsoleConfig, { auth: "oidc" }>, as: oauth.AuthorizationServer) {
  if (!as.authorization_endpoint) throw new Error("身份提供方未公布 authorization_endpoint");
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set("client_id", config.client_id);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", config.scope || "openid");
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("state", state);
  const resource = resourceIndicator(config);
  if (resource) url.searchParams.set("resource", resource);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back: location.hash }));
  location.assign(url.href);
}

/** 退出: forget the tokens, then end the provider's session when it offers that. */
export function signOut() {
  const s = session;
  session = null;
  if (s?.config.auth === "oidc" && s.endSession) {
    const url = new URL(s.endSession);
    url.searchParams.set("client_id", s.config.client_id);
    if (s.idToken) url.searchParams.set("id_token_hint", s.idToken);
    url.searchParams.set("post_logout_redirect_uri", redirectUri());
    location.assign(url.href);
  } else {
    location.assign("/console/#/");
    location.reload();
  }
}

/** The access token has expired (or will within 30 s). */
export function expired(): boolean {
  const s = session;
  return !!s && s.identity.mode === "oidc" && s.identity.exp > 0 && s.identity.exp * 1000 < Date.now() + 30_000;
}
