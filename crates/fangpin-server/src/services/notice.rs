//! The printed village notice (公示), for PublicityService.PrintNotice: the
//! households of one village now in publicity, read in one snapshot, said
//! by `fangpin_domain::publicity::printed_notice` and laid out as a PDF by
//! `notice_pdf`. The county office's name, address and phone come from
//! EnrollmentService.SetCountyOffice.

use fangpin_domain::publicity::{self, CountyOffice, NoticeEntry};
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::{self as claim_store, MAX_NOTICES};
use fangpin_store::counties;
use sha2::{Digest, Sha256};

use crate::services::notice_pdf;
use crate::write_path::app::App;
use crate::write_path::clock::china_date;
use crate::write_path::convert::Check;
use crate::write_path::error::AppError;

pub async fn print(app: &App, req: pb::PrintNoticeRequest) -> Result<pb::NoticeDocument, Status> {
    let mut c = Check::new();
    let village = c.village("village_code", &req.village_code);
    c.finish()?;
    let village = village.expect("checked");
    let county_code = village.county().as_str().to_string();
    let place = fangpin_store::places::Place {
        county_code: county_code.clone(),
        village_code: village.as_str().to_string(),
    };
    // A village outside the caller's scope reads as one that does not exist.
    if !app.sees_place(&place).await? {
        return Err(AppError::not_found("village", village.as_str()).into());
    }
    let Some(font) = app.notice_font.clone() else {
        return Err(AppError::precondition(
            "NOTICE_FONT",
            "server.notice_font",
            "this server has no CJK font for printed notices ([notice] font)",
        )
        .into());
    };
    let mut conn = app.store.read().await.map_err(AppError::from)?;
    let county = counties::get_county(&mut conn, &county_code)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::not_found("county", &county_code))?;
    let office = counties::get_office(&mut conn, &county_code)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| {
            AppError::precondition(
                "COUNTY_OFFICE",
                format!("county/{county_code}"),
                "the notice names the county office, its address and phone: \
                 set them first (EnrollmentService.SetCountyOffice)",
            )
        })?;
    let notices = claim_store::list_notices(&mut conn, village.as_str())
        .await
        .map_err(AppError::from)?;
    drop(conn);
    if notices.len() as i64 >= MAX_NOTICES {
        return Err(AppError::precondition(
            "TOO_LARGE",
            format!("village/{}", village.as_str()),
            format!("a printed notice lists fewer than {MAX_NOTICES} households"),
        )
        .into());
    }
    let mut entries: Vec<NoticeEntry> = notices
        .iter()
        .map(|n| {
            let assessment = n.claim.assessment.as_ref().ok_or_else(|| {
                AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                    "claim {} is in publicity without an assessment",
                    n.claim.claim_id
                )))
            })?;
            let period = n.claim.publicity.ok_or_else(|| {
                AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                    "claim {} is in publicity without a period",
                    n.claim.claim_id
                )))
            })?;
            Ok(NoticeEntry {
                head_name: n.head_name.clone(),
                // The stored masked form: the key is never needed here.
                id_number_masked: n.head_id_masked.clone(),
                relief_kind: n.claim.relief_kind,
                amount: assessment.amount,
                period,
            })
        })
        .collect::<Result<_, AppError>>()?;
    entries
        .sort_by(|a, b| (a.period.opens_on, &a.head_name).cmp(&(b.period.opens_on, &b.head_name)));
    let today = china_date(app.clock.now());
    let office = CountyOffice {
        name: office.office_name,
        address: office.address,
        phone: office.phone,
    };
    let notice =
        publicity::printed_notice(&county.name, village.as_str(), &office, &entries, today);
    let missing = font.missing(&notice_pdf::all_text(&notice));
    if !missing.is_empty() {
        let shown: String = missing.iter().take(20).collect();
        return Err(AppError::precondition(
            "NOTICE_FONT",
            "server.notice_font",
            format!(
                "the notice font {} has no glyph for {shown}: set a font that has (for a rare \
                 character in a name, a GB 18030 font)",
                font.path()
            ),
        )
        .into());
    }
    // Laying out and compressing a long notice takes a while: off the
    // async workers.
    let households = entries.len() as u32;
    let pdf = tokio::task::spawn_blocking(move || notice_pdf::render(&notice, &font))
        .await
        .map_err(|e| AppError::Internal(format!("the notice renderer stopped: {e}")))?
        .map_err(AppError::Internal)?;
    Ok(pb::NoticeDocument {
        village_code: village.as_str().to_string(),
        sha256: hex::encode(Sha256::digest(&pdf)),
        pdf,
        households,
        printed_on: today.to_string(),
        file_name: format!("公示-{}-{today}.pdf", village.as_str()),
    })
}
