// Small shared pieces: the async-call hook, the error box, money.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { explain, type ShownError } from "./api";
import { yuan } from "./format";

export type Async<T> =
  | { status: "loading" }
  | { status: "ok"; value: T }
  | { status: "error"; error: ShownError; raw: unknown };

/** Runs `fn` whenever `deps` change; a stale answer never overwrites a newer one. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): [Async<T>, () => void] {
  const [state, setState] = useState<Async<T>>({ status: "loading" });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ status: "loading" });
    fn().then(
      (value) => live && setState({ status: "ok", value }),
      (raw) => live && setState({ status: "error", error: explain(raw), raw }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return [state, () => setTick((t) => t + 1)];
}

export function ErrorBox({ error, testid }: { error: ShownError; testid?: string }) {
  return (
    <div class="error" role="alert" data-testid={testid}>
      <strong>{error.title}</strong>
      {error.code && <span class="code">{error.code}</span>}
      <div class="message">{error.message || "（服务器未给出说明）"}</div>
    </div>
  );
}

/** Renders an Async: a loading line, the error in place, or the content. */
export function Show<T>({ a, children, testid }: { a: Async<T>; children: (v: T) => ComponentChildren; testid?: string }) {
  if (a.status === "loading") return <div class="loading">加载中…</div>;
  if (a.status === "error") return <ErrorBox error={a.error} testid={testid} />;
  return <>{children(a.value)}</>;
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" id={id}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/**
 * A yuan amount with ¥ and separators. With a testid, the server's string
 * itself follows in small type inside the element tests read, exactly as
 * sent ("1800.00"), so what an auditor copies is never reformatted.
 */
export function Money({ v, testid }: { v: string; testid?: string }) {
  if (!v) return <span class="money">—</span>;
  const cls = "money" + (v.startsWith("-") ? " neg" : "");
  if (!testid) return <span class={cls}>{yuan(v)}</span>;
  return (
    <span class={cls}>
      {yuan(v)}
      <span class="raw" title="服务器原值（元）" data-testid={testid}>{v}</span>
    </span>
  );
}

export function KV({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="kv">
      {rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v === "" || v === undefined || v === null ? "—" : v}</dd>
        </>
      ))}
    </dl>
  );
}
