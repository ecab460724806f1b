//! PolicyService: versioned county policies.

use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, policy_service_server::PolicyService};
use fangpin_store::counties;

use crate::write_path::app::App;
use crate::write_path::convert::{self, Check};
use crate::write_path::error::AppError;

pub struct PolicyApi(pub App);

#[tonic::async_trait]
impl PolicyService for PolicyApi {
    async fn put_policy(
        &self,
        request: Request<pb::PutPolicyRequest>,
    ) -> Result<Response<pb::PolicyResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        if req.policy.is_none() {
            c.bad("policy", "is required");
        }
        c.finish()?;
        let wire = req.policy.clone().unwrap_or_default();
        let policy = convert::policy_from_pb(&wire)?;
        let version = wire.version;
        let county = policy.county.as_str().to_string();
        self.0.authorize_county(&county).await?;
        let response = self
            .0
            .write("PutPolicy", &req, &request_id.expect("checked").to_string(), &county.clone(), move |conn, ctx| {
                Box::pin(async move {
                    if counties::get_county(conn, &county).await?.is_none() {
                        return Err(AppError::not_found("county", &county));
                    }
                    let latest = counties::get_policy(conn, &county, policy.policy_year, None).await?;
                    let stored_version = if version == 0 {
                        let next = latest.map_or(1, |l| l.version + 1);
                        counties::insert_policy(conn, next, &policy, ctx.now).await?;
                        next
                    } else {
                        let existing = counties::get_policy(conn, &county, policy.policy_year, Some(version))
                            .await?
                            .ok_or_else(|| AppError::not_found("policy version", version))?;
                        if existing.frozen || !counties::replace_policy(conn, version, &policy).await? {
                            return Err(AppError::precondition(
                                "POLICY_FROZEN",
                                format!("policy.version={version}"),
                                "this policy version has been used by a claim and can no longer change; \
                                 put a new version (version 0) instead",
                            ));
                        }
                        version
                    };
                    Ok(pb::PolicyResponse { policy: Some(convert::policy_to_pb(&policy, stored_version, false)) })
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let county = c.county("county_code", &req.county_code);
        let year = c.year("policy_year", req.policy_year);
        c.finish()?;
        let (county, year) = (county.expect("checked"), year.expect("checked"));
        self.0.authorize_county(county.as_str()).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let version = (req.version != 0).then_some(req.version);
        let record = counties::get_policy(&mut conn, county.as_str(), year, version)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("policy", format!("{county}/{year}")))?;
        Ok(Response::new(pb::PolicyResponse {
            policy: Some(convert::policy_to_pb(
                &record.policy,
                record.version,
                record.frozen,
            )),
        }))
    }
}
