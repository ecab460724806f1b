// 审计日志: the chain's verification, and its export as JSON Lines.
import { toJson } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";
import { api, explain, type ShownError } from "../api";
import { jsonl, save } from "../download";
import { AuditEntrySchema } from "../gen/fangpin/v1/audit_pb";
import { ts } from "../format";
import { ErrorBox, KV, Section, Show, useAsync } from "../ui";

const BREAKS: Record<string, string> = {
  bad_hash: "条目内容被改动（bad_hash）",
  gap: "条目缺失、插入或顺序错乱（gap）",
  bad_link: "前一条目被替换（bad_link）",
};

export function Audit({ county }: { county: string }) {
  const [report, again] = useAsync(() => api.audit.verifyAuditChain({ countyCode: county }), [county]);
  const [exporting, setExporting] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [exportError, setExportError] = useState<ShownError | null>(null);
  const doExport = async () => {
    setExportError(null);
    setBusy(true);
    setExporting("正在导出…");
    try {
      const out: unknown[] = [];
      let after = 0n;
      for (;;) {
        const page = await api.audit.listAuditEntries({ countyCode: county, afterSeq: after, pageSize: 1000 });
        for (const e of page.entries) out.push(toJson(AuditEntrySchema, e, { useProtoFieldName: true, alwaysEmitImplicit: true }));
        setExporting(`正在导出… 已取 ${out.length} 条`);
        if (page.nextAfterSeq === 0n || page.entries.length === 0) break;
        after = page.nextAfterSeq;
      }
      save(jsonl(out), `audit-${county}.jsonl`);
      setExporting(`已导出 ${out.length} 条`);
    } catch (e) {
      setExporting(null);
      setExportError(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="page">
      <h1>审计日志 <small>县 {county}</small></h1>
      <Section title="哈希链校验">
        <Show a={report} testid="audit-error">
          {(r) => (
            <>
              <p class={r.intact ? "ok big" : "neg big"} data-testid="audit-intact">
                {r.intact ? "✔ 审计链完整" : "✘ 审计链已断裂"}
              </p>
              <KV
                rows={[
                  ["已校验条目", <span data-testid="audit-entries-checked">{r.entriesChecked.toString()}</span>],
                  ...(r.intact
                    ? ([
                        ["链头序号", r.headSeq.toString()],
                        ["链头哈希", <span class="mono hash">{r.headHash}</span>],
                      ] as [string, preact.ComponentChildren][])
                    : ([
                        ["断裂位置（序号）", <strong>{r.brokenAtSeq.toString()}</strong>],
                        ["最后完好条目", r.lastGoodSeq.toString()],
                        ["断裂类型", BREAKS[r.breakKind] ?? r.breakKind],
                      ] as [string, preact.ComponentChildren][])),
                  ["校验时间（北京时间）", ts(r.verifiedAt)],
                ]}
              />
              <button type="button" onClick={again}>重新校验</button>
            </>
          )}
        </Show>
      </Section>
      <Section title="导出">
        <p>按序号逐页读取全部审计条目，保存为 JSON Lines（每行一条，字段名同 proto），可交外部独立校验。</p>
        <button type="button" data-testid="audit-export" disabled={busy} onClick={doExport}>
          导出
        </button>{" "}
        {exporting && <span class="muted">{exporting}</span>}
        {exportError && <ErrorBox error={exportError} />}
      </Section>
    </div>
  );
}
