//! ServiceInfoService: the service's version, business date, the reach of
//! its working-day calendar and whether its database is out of space, for
//! `fangpin status`.

use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, service_info_service_server::ServiceInfoService};

use crate::write_path::app::App;

pub struct ServiceInfoApi(pub App);

/// What `storage_warning` says while the database is out of space.
pub const STORAGE_WARNING: &str = "the database is out of space: writes are refused with \
     RESOURCE_EXHAUSTED and health is NOT_SERVING until the operator frees space";

#[tonic::async_trait]
impl ServiceInfoService for ServiceInfoApi {
    async fn get_service_info(
        &self,
        _request: Request<pb::GetServiceInfoRequest>,
    ) -> Result<Response<pb::ServiceInfo>, Status> {
        let today = self.0.today();
        let calendar = &self.0.calendar;
        let (first, last) = calendar.years();
        Ok(Response::new(pb::ServiceInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            today: today.to_string(),
            calendar_first_year: first,
            calendar_last_year: last,
            calendar_last_covered_day: calendar.last_covered_day().to_string(),
            calendar_days_left: calendar.days_of_coverage_left(today),
            calendar_warning: calendar.coverage_warning(today).unwrap_or_default(),
            storage_warning: if self.0.storage.is_full() {
                STORAGE_WARNING.to_string()
            } else {
                String::new()
            },
        }))
    }
}
