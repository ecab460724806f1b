// The console's entry: read the runtime config, sign in, render the shell.
import { render } from "preact";
import { useState } from "preact/hooks";
import { current, defaultCounty, expired, loadConfig, signIn, signOut } from "./auth";
import { roleZh } from "./format";
import { go, href, useRoute, type Route } from "./route";
import { Dashboard } from "./pages/Dashboard";
import { Claims } from "./pages/Claims";
import { ClaimPage } from "./pages/Claim";
import { Audit } from "./pages/Audit";
import { Finance } from "./pages/Finance";

/** The county in development mode when the URL names none (memory only). */
let devCounty = "";

export function countyOf(route: Route): string {
  const q = route.query.get("county");
  if (q) return q;
  const s = current();
  if (s?.identity.mode === "oidc") return defaultCounty(s.identity);
  return devCounty;
}

const NAV: [string, string][] = [
  ["/", "总览"],
  ["/claims", "理赔案件"],
  ["/audit", "审计日志"],
  ["/finance", "财务对账"],
];

function Header({ route, county }: { route: Route; county: string }) {
  const s = current()!;
  const id = s.identity;
  const top = "/" + (route.path[0] ?? "");
  const [draft, setDraft] = useState(county);
  const setCounty = (c: string) => {
    devCounty = c;
    const q = new URLSearchParams(route.query);
    if (c) q.set("county", c);
    else q.delete("county");
    go(href("/" + route.path.join("/"), q));
  };
  return (
    <header class="top">
      <div class="brand">精准防贫保险 · 管理控制台</div>
      <nav>
        {NAV.map(([p, label]) => (
          <a href={href(p, { county: route.query.get("county") ?? undefined })} class={top === p ? "active" : ""}>
            {label}
          </a>
        ))}
      </nav>
      <div class="who" data-testid="identity">
        {id.mode === "development" ? (
          <>
            <span class="badge dev">开发模式</span>
            <label>
              县（区）代码{" "}
              <input
                class="county"
                value={draft}
                maxLength={6}
                placeholder="如 130421"
                onInput={(e) => setDraft((e.target as HTMLInputElement).value.trim())}
                onKeyDown={(e) => e.key === "Enter" && setCounty(draft)}
                onBlur={() => draft !== county && setCounty(draft)}
              />
            </label>
          </>
        ) : (
          <>
            <span class="sub" data-testid="identity-sub">{id.sub}</span>
            <span class="badge" data-testid="identity-role">{roleZh(id.role)}</span>
            {id.counties.length > 1 ? (
              <select value={county} onChange={(e) => setCounty((e.target as HTMLSelectElement).value)}>
                {id.counties.map((c) => (
                  <option value={c}>{c}</option>
                ))}
              </select>
            ) : (
              <span class="scope">{id.village ? `村 ${id.village}` : id.township ? `乡镇 ${id.township}` : county ? `县 ${county}` : ""}</span>
            )}
          </>
        )}
        <a
          href="#"
          class="signout"
          onClick={(e) => {
            e.preventDefault();
            signOut();
          }}
        >
          退出
        </a>
      </div>
    </header>
  );
}

function App() {
  const route = useRoute();
  const county = countyOf(route);
  const [p0, p1] = route.path;
  let page;
  if (expired()) {
    page = (
      <div class="error" role="alert">
        <strong>登录已过期</strong>
        <div class="message">
          请<a href="#" onClick={(e) => { e.preventDefault(); location.reload(); }}>重新登录</a>。
        </div>
      </div>
    );
  } else if (!county) {
    page = <div class="notice">请先在右上角输入县（区）代码（6 位）。</div>;
  } else if (p0 === undefined) page = <Dashboard county={county} route={route} />;
  else if (p0 === "claims" && p1) page = <ClaimPage claimId={p1} />;
  else if (p0 === "claims") page = <Claims county={county} route={route} />;
  else if (p0 === "audit") page = <Audit county={county} />;
  else if (p0 === "finance") page = <Finance county={county} route={route} />;
  else page = <div class="notice">没有这个页面。<a href="#/">回到总览</a></div>;
  return (
    <>
      <Header route={route} county={county} />
      <main>{page}</main>
    </>
  );
}

function Fatal({ message }: { message: string }) {
  return (
    <main>
      <div class="error" role="alert">
        <strong>控制台无法启动</strong>
        <div class="message">{message}</div>
      </div>
    </main>
  );
}

async function start() {
  const root = document.getElementById("app")!;
  root.textContent = ""; // the static "正在加载…" line
  try {
    const config = await loadConfig();
    if (!(await signIn(config))) return; // redirecting to the provider
    render(<App />, root);
  } catch (e) {
    render(<Fatal message={e instanceof Error ? e.message : String(e)} />, root);
  }
}

void start();
