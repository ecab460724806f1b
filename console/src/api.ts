// gRPC-Web to fangpind (tonic-web: binary only, same origin), one client
// per service, and the one way a server error is shown.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { accessToken, current, DEV_ACTOR } from "./auth";
import { AuditService } from "./gen/fangpin/v1/audit_pb";
import { ClaimService } from "./gen/fangpin/v1/claim_pb";
import { DeadlineService } from "./gen/fangpin/v1/deadlines_pb";
import { EvidenceService } from "./gen/fangpin/v1/evidence_pb";
import { FollowUpService } from "./gen/fangpin/v1/follow_up_pb";
import { LedgerService } from "./gen/fangpin/v1/ledger_pb";
import { PayoutService } from "./gen/fangpin/v1/payout_pb";
import { PublicityService } from "./gen/fangpin/v1/publicity_pb";
import { ServiceInfoService } from "./gen/fangpin/v1/service_info_pb";

/** Every call carries the bearer token, or in development mode the actor. */
const credentials: Interceptor = (next) => async (req) => {
  const token = accessToken();
  if (token) {
    req.header.set("authorization", `Bearer ${token}`);
  } else if (current()?.identity.mode === "development") {
    req.header.set("x-fangpin-actor", DEV_ACTOR);
  }
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [credentials],
});

export const api = {
  audit: createClient(AuditService, transport),
  claims: createClient(ClaimService, transport),
  deadlines: createClient(DeadlineService, transport),
  evidence: createClient(EvidenceService, transport),
  followUp: createClient(FollowUpService, transport),
  ledger: createClient(LedgerService, transport),
  payout: createClient(PayoutService, transport),
  publicity: createClient(PublicityService, transport),
  serviceInfo: createClient(ServiceInfoService, transport),
};

const CODE_NAMES: Record<number, [string, string]> = {
  [Code.Canceled]: ["CANCELLED", "请求已取消"],
  [Code.Unknown]: ["UNKNOWN", "未知错误"],
  [Code.InvalidArgument]: ["INVALID_ARGUMENT", "请求参数有误"],
  [Code.DeadlineExceeded]: ["DEADLINE_EXCEEDED", "请求超时"],
  [Code.NotFound]: ["NOT_FOUND", "未找到"],
  [Code.AlreadyExists]: ["ALREADY_EXISTS", "已存在"],
  [Code.PermissionDenied]: ["PERMISSION_DENIED", "无权访问（服务器拒绝）"],
  [Code.ResourceExhausted]: ["RESOURCE_EXHAUSTED", "资源不足"],
  [Code.FailedPrecondition]: ["FAILED_PRECONDITION", "当前状态不允许此操作"],
  [Code.Aborted]: ["ABORTED", "操作被中止"],
  [Code.OutOfRange]: ["OUT_OF_RANGE", "超出范围"],
  [Code.Unimplemented]: ["UNIMPLEMENTED", "服务器未实现此接口"],
  [Code.Internal]: ["INTERNAL", "服务器内部错误"],
  [Code.Unavailable]: ["UNAVAILABLE", "服务暂不可用"],
  [Code.DataLoss]: ["DATA_LOSS", "数据丢失"],
  [Code.Unauthenticated]: ["UNAUTHENTICATED", "未登录或登录已过期"],
};

export interface ShownError {
  /** The gRPC code name, e.g. PERMISSION_DENIED; empty for a non-gRPC error. */
  code: string;
  /** The Chinese summary. */
  title: string;
  /** The server's own message, as it sent it. */
  message: string;
}

export function explain(e: unknown): ShownError {
  if (e instanceof ConnectError) {
    const [code, title] = CODE_NAMES[e.code] ?? [`CODE_${e.code}`, "服务器错误"];
    return { code, title, message: e.rawMessage };
  }
  if (e instanceof Error) return { code: "", title: "出错了", message: e.message };
  return { code: "", title: "出错了", message: String(e) };
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ConnectError && e.code === Code.NotFound;
}
