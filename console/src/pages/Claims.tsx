// 理赔案件: ListClaims with every filter in the hash query, 50 per page,
// 上一页/下一页 over a stack of page tokens.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { byKey, CHANNELS, CLAIM_STATES, RELIEF_KINDS, shortId, zh, type EnumName } from "../format";
import { go, href, type Route } from "../route";
import { Money, Section, Show, useAsync } from "../ui";

const FILTERS = ["state", "township", "village", "kind", "channel", "from", "to"] as const;
type Filter = (typeof FILTERS)[number];

export function Claims({ county, route }: { county: string; route: Route }) {
  const q = route.query;
  const get = (k: Filter) => q.get(k) ?? "";
  const key = FILTERS.map((k) => get(k)).join("|") + "|" + county;
  // tokens[i] is the token of page i (page 0: ""); reset when the filters change.
  const [tokens, setTokens] = useState<string[]>([""]);
  const [filterKey, setFilterKey] = useState(key);
  useEffect(() => {
    if (key !== filterKey) {
      setFilterKey(key);
      setTokens([""]);
    }
  }, [key]);
  const page = key === filterKey ? tokens.length - 1 : 0;
  const token = key === filterKey ? tokens[tokens.length - 1] : "";
  const [list] = useAsync(
    () =>
      api.claims.listClaims({
        countyCode: county,
        state: byKey(CLAIM_STATES, get("state")),
        townshipCode: get("township"),
        villageCode: get("village"),
        reliefKind: byKey(RELIEF_KINDS, get("kind")),
        channel: byKey(CHANNELS, get("channel")),
        intakeFrom: get("from"),
        intakeTo: get("to"),
        pageSize: 50,
        pageToken: token,
      }),
    [key, token],
  );
  const apply = (form: HTMLFormElement) => {
    const data = new FormData(form);
    const next = new URLSearchParams();
    if (q.get("county")) next.set("county", q.get("county")!);
    for (const k of FILTERS) {
      const v = String(data.get(k) ?? "").trim();
      if (v) next.set(k, v);
    }
    go(href("/claims", next));
  };
  return (
    <div class="page">
      <h1>理赔案件 <small>县 {county}</small></h1>
      <form
        class="filters"
        key={key}
        onSubmit={(e) => {
          e.preventDefault();
          apply(e.currentTarget as HTMLFormElement);
        }}
      >
        <Select name="state" label="状态" names={CLAIM_STATES} value={get("state")} />
        <label>乡镇代码<input name="township" value={get("township")} maxLength={9} size={10} placeholder="9 位" /></label>
        <label>村代码<input name="village" value={get("village")} maxLength={12} size={13} placeholder="12 位" /></label>
        <Select name="kind" label="类型" names={RELIEF_KINDS} value={get("kind")} />
        <Select name="channel" label="渠道" names={CHANNELS} value={get("channel")} />
        <label>受理日期自<input type="date" name="from" value={get("from")} /></label>
        <label>至<input type="date" name="to" value={get("to")} /></label>
        <button type="submit">查询</button>
        <a class="button plain" href={href("/claims", { county: q.get("county") ?? undefined })}>清除</a>
      </form>
      <Section title={`第 ${page + 1} 页`}>
        <Show a={list} testid="claims-error">
          {(r) => (
            <>
              <table class="claims" data-testid="claims-table">
                <thead>
                  <tr>
                    <th>案件编号</th><th>村</th><th>类型</th><th>渠道</th><th>状态</th><th>受理日期</th><th class="num">核定救助</th><th class="num">实付</th>
                  </tr>
                </thead>
                <tbody>
                  {r.claims.length === 0 && (
                    <tr><td colSpan={8} class="muted">没有符合条件的案件</td></tr>
                  )}
                  {r.claims.map((c) => (
                    <tr data-claim-id={c.claimId}>
                      <td><a href={href("/claims/" + c.claimId)} title={c.claimId}>{shortId(c.claimId)}</a></td>
                      <td>{c.villageCode}</td>
                      <td>{zh(RELIEF_KINDS, c.reliefKind)}</td>
                      <td>{zh(CHANNELS, c.channel)}</td>
                      <td>{zh(CLAIM_STATES, c.state)}</td>
                      <td>{c.intakeDate}</td>
                      <td class="num"><Money v={c.assessment?.amountYuan ?? ""} /></td>
                      <td class="num"><Money v={c.payoutYuan} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div class="pager">
                <button type="button" disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>上一页</button>
                <span>第 {page + 1} 页 · 本页 {r.claims.length} 件</span>
                <button type="button" disabled={!r.nextPageToken} onClick={() => setTokens([...tokens, r.nextPageToken])}>下一页</button>
              </div>
            </>
          )}
        </Show>
      </Section>
    </div>
  );
}

function Select({ name, label, names, value }: { name: string; label: string; names: EnumName[]; value: string }) {
  return (
    <label>
      {label}
      <select name={name} value={value}>
        <option value="">全部</option>
        {names.map((n) => (
          <option value={n.key}>{n.zh}</option>
        ))}
      </select>
    </label>
  );
}
