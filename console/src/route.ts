// Hash routing: #/ , #/claims, #/claims/<id>, #/audit, #/finance, each with
// an optional query (#/claims?state=paid&village=...).
import { useEffect, useState } from "preact/hooks";

export interface Route {
  path: string[];
  query: URLSearchParams;
}

export function parse(hash: string): Route {
  const h = hash.replace(/^#/, "") || "/";
  const q = h.indexOf("?");
  const pathPart = q < 0 ? h : h.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : h.slice(q + 1));
  return { path: pathPart.split("/").filter(Boolean).map(decodeURIComponent), query };
}

export function href(path: string, query?: Record<string, string | undefined> | URLSearchParams): string {
  const q = new URLSearchParams();
  if (query instanceof URLSearchParams) query.forEach((v, k) => v && q.set(k, v));
  else if (query) for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parse(hash);
}

export function go(h: string) {
  if (location.hash !== h) location.hash = h;
}
