//! EnrollmentService.ImportRoster and GetRosterImport: a county's roster
//! (花名册) enrolled from the file the national monitoring system exports
//! (docs/roster.md).
//!
//! The import runs in three steps, so that the county's write lock is held
//! only for the writing:
//! 1. the stream is received into a spool file, sealed with a key that
//!    lives only in this call's memory (the roster holds ID numbers and
//!    bank accounts in clear, which never reach the disk as they are), and
//!    hashed;
//! 2. the spool is read and checked whole (`check_roster`, on a blocking
//!    thread): rows, households, people already insured. This gives the
//!    report and the households to leave out;
//! 3. under the county's lock, the pool's room is checked and the spool is
//!    read again: households are sealed on a blocking thread and inserted
//!    in batches as they come, so memory holds a batch, not the roster.
//!
//! Both readings run `fangpin_domain::roster`'s assembler over the same
//! bytes, so they see the same households.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Write};
use std::sync::Arc;

use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use fangpin_domain::identity::{CountyCode, ResidentId};
use fangpin_domain::personal_data::{Column, PersonalDataKey, mask_account};
use fangpin_domain::roster::{self, Assembled, Cell, RosterHousehold, RowError};
use fangpin_proto::tonic::{Status, Streaming};
use fangpin_proto::v1 as pb;
use fangpin_store::counties::{self, HouseholdRecord, PersonRecord};
use fangpin_store::roster::{self as store, RosterErrorRecord, RosterImportRecord};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::services::screening::IMPORT_IDLE_LIMIT;
use crate::write_path::app::App;
use crate::write_path::convert::{Check, MAX_LABEL_CHARS};
use crate::write_path::error::AppError;
use crate::write_path::personal_data;

/// Largest `data` message accepted.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;
/// Largest CSV roster: 10^6 persons take about 100 MB.
pub const MAX_CSV_BYTES: u64 = 1 << 30;
/// Largest XLSX roster. A workbook is read whole into memory (its parts
/// are compressed and need seeking), so it is held to less: 10^6 persons
/// take about 40 MB.
pub const MAX_XLSX_BYTES: u64 = 256 << 20;
/// Households sealed and inserted together.
const BATCH_HOUSEHOLDS: usize = 500;
/// Errors returned in a response; `store::ERRORS_KEPT` are stored.
pub const ERRORS_IN_SUMMARY: usize = store::ERRORS_KEPT;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    CsvUtf8,
    CsvGbk,
    Xlsx,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::CsvUtf8 => "csv_utf8",
            Format::CsvGbk => "csv_gbk",
            Format::Xlsx => "xlsx",
        }
    }

    fn parse(text: &str) -> Option<Format> {
        [Format::CsvUtf8, Format::CsvGbk, Format::Xlsx]
            .into_iter()
            .find(|f| f.as_str() == text)
    }

    fn to_pb(self) -> pb::RosterFormat {
        match self {
            Format::CsvUtf8 => pb::RosterFormat::CsvUtf8,
            Format::CsvGbk => pb::RosterFormat::CsvGbk,
            Format::Xlsx => pb::RosterFormat::Xlsx,
        }
    }
}

/// The file as received, sealed chunk by chunk on disk.
///
/// The key is drawn for this spool and never leaves memory; each chunk is
/// sealed under its sequence number as nonce, so chunks cannot be
/// reordered or swapped. The file is unnamed (deleted when closed).
struct Spool {
    file: std::fs::File,
    cipher: XChaCha20Poly1305,
    /// (offset, sealed length) of each chunk, in order.
    chunks: Vec<(u64, usize)>,
    written: u64,
}

impl Spool {
    fn new() -> Result<Spool, AppError> {
        let key: [u8; 32] = personal_data::random_bytes()?;
        let file = tempfile::tempfile()
            .map_err(|e| AppError::Internal(format!("a spool file for the roster: {e}")))?;
        Ok(Spool {
            file,
            cipher: XChaCha20Poly1305::new(&key.into()),
            chunks: Vec::new(),
            written: 0,
        })
    }

    fn nonce(seq: usize) -> XNonce {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&(seq as u64).to_le_bytes());
        XNonce::from(nonce)
    }

    fn append(&mut self, data: &[u8]) -> Result<(), AppError> {
        let sealed = self
            .cipher
            .encrypt(&Spool::nonce(self.chunks.len()), data)
            .map_err(|_| AppError::Internal("sealing a roster chunk".into()))?;
        self.file
            .write_all(&sealed)
            .map_err(|e| AppError::Internal(format!("writing the roster spool: {e}")))?;
        self.chunks.push((self.written, sealed.len()));
        self.written += sealed.len() as u64;
        Ok(())
    }

    /// The chunks as received, one at a time. A chunk that does not open
    /// (the disk changed under us) ends the reading with an error.
    fn chunks(&self) -> impl FnMut() -> Option<Result<Bytes, AppError>> + '_ {
        use std::os::unix::fs::FileExt;
        let mut next = 0;
        move || {
            let &(offset, len) = self.chunks.get(next)?;
            let mut sealed = vec![0u8; len];
            let opened = self
                .file
                .read_exact_at(&mut sealed, offset)
                .map_err(|e| AppError::Internal(format!("reading the roster spool: {e}")))
                .and_then(|()| {
                    self.cipher
                        .decrypt(&Spool::nonce(next), sealed.as_slice())
                        .map_err(|_| AppError::Internal("the roster spool does not open".into()))
                });
            next += 1;
            Some(opened.map(Bytes::from))
        }
    }
}

/// What the check of the whole roster found (step 2).
#[derive(Debug, Default)]
struct Checked {
    rows: u64,
    households_accepted: u64,
    persons_accepted: u64,
    /// Numbers of the households not to enrol: rejected, or split.
    skip: HashSet<String>,
    households_rejected: u64,
    rows_rejected: u64,
    errors: Vec<RowError>,
    errors_total: u64,
    by_reason: BTreeMap<&'static str, u64>,
}

/// Reads the spooled roster in `format` and hands each household to `each`
/// in file order; returns the households whose rows were not together.
fn read_roster(
    spool: &Spool,
    format: Format,
    county: &CountyCode,
    today: chrono::NaiveDate,
    insured: &(dyn Fn(&ResidentId) -> bool + Sync),
    mut each: impl FnMut(Assembled),
) -> Result<HashSet<String>, AppError> {
    let mut chunks = spool.chunks();
    let mut failed = None;
    let mut next = || match chunks()? {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            failed = Some(e);
            None
        }
    };
    let read = match format {
        Format::CsvUtf8 | Format::CsvGbk => {
            let encoding = if format == Format::CsvGbk {
                encoding_rs::GBK
            } else {
                encoding_rs::UTF_8
            };
            roster::read_csv(&mut next, encoding, county.clone(), today, insured, each)
                .map_err(|e| AppError::invalid("data", e.to_string()))
        }
        Format::Xlsx => {
            let mut whole = Vec::with_capacity(spool.written as usize);
            while let Some(chunk) = next() {
                whole.extend_from_slice(&chunk);
            }
            read_xlsx(whole, county, today, insured, &mut each)
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    let read = read?;
    if read.too_many_rows {
        return Err(AppError::invalid(
            "data",
            format!(
                "a roster may have at most {} rows; split it by township",
                roster::MAX_ROWS
            ),
        ));
    }
    Ok(read.split)
}

/// The first worksheet of a workbook, row by row: the first row is the
/// header, and a row's line is its row number in the sheet.
fn read_xlsx<'i>(
    bytes: Vec<u8>,
    county: &CountyCode,
    today: chrono::NaiveDate,
    insured: &'i (dyn Fn(&ResidentId) -> bool + Sync),
    each: &mut dyn FnMut(Assembled),
) -> Result<roster::RosterRead, AppError> {
    use calamine::{DataRef, Reader, Xlsx};
    let not_xlsx =
        |e: calamine::XlsxError| AppError::invalid("data", format!("not an XLSX workbook: {e}"));
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(not_xlsx)?;
    let Some(sheet) = book.sheet_names().first().cloned() else {
        return Err(AppError::invalid("data", "the workbook has no worksheet"));
    };
    let mut cells = book.worksheet_cells_reader(&sheet).map_err(not_xlsx)?;
    /// A cell's value, owned for the length of its row.
    enum Value {
        Empty,
        Text(String),
        Number(f64),
        Other,
    }
    let value = |v: &DataRef<'_>| match v {
        DataRef::Empty => Value::Empty,
        DataRef::String(s) => Value::Text(s.clone()),
        DataRef::SharedString(s) => Value::Text((*s).to_string()),
        DataRef::Float(f) => Value::Number(*f),
        DataRef::Int(i) => Value::Number(*i as f64),
        _ => Value::Other,
    };
    let mut assembler: Option<roster::RosterAssembler<'i>> = None;
    let mut row: Vec<Value> = Vec::new();
    let mut row_no: Option<u32> = None;
    let mut too_many_rows = false;
    // A sheet leaves out empty cells at a row's end, which a CSV writes as
    // empty fields: rows are made as wide as the header.
    let mut width = 0;
    let mut search = roster::HeaderSearch::default();
    // Hands a finished row to the assembler (or reads it as the header).
    let mut finish_row = |row_no: u32,
                          row: &mut Vec<Value>,
                          assembler: &mut Option<roster::RosterAssembler<'i>>|
     -> Result<(), AppError> {
        let mut values = std::mem::take(row);
        match assembler {
            None => {
                // Still above the header: a title row, or the header.
                let names: Vec<String> = values
                    .iter()
                    .map(|v| match v {
                        Value::Text(t) => t.clone(),
                        _ => String::new(),
                    })
                    .collect();
                let found = search
                    .offer(&names)
                    .map_err(|e| AppError::invalid("data", e.to_string()))?;
                if let Some(layout) = found {
                    width = values.len();
                    *assembler = Some(roster::RosterAssembler::new(
                        layout,
                        county.clone(),
                        today,
                        insured,
                    ));
                }
            }
            Some(a) => {
                if values.iter().all(|v| matches!(v, Value::Empty)) {
                    return Ok(());
                }
                if a.rows >= roster::MAX_ROWS {
                    too_many_rows = true;
                    return Ok(());
                }
                while values.len() < width {
                    values.push(Value::Empty);
                }
                let cells: Vec<Cell<'_>> = values
                    .iter()
                    .map(|v| match v {
                        Value::Empty => Cell::Empty,
                        Value::Text(t) if t.trim().is_empty() => Cell::Empty,
                        Value::Text(t) => Cell::Text(t),
                        Value::Number(n) => Cell::Number(*n),
                        Value::Other => Cell::Unreadable,
                    })
                    .collect();
                if let Some(done) = a.row(u64::from(row_no) + 1, &cells) {
                    each(done);
                }
            }
        }
        Ok(())
    };
    while let Some(cell) = cells.next_cell().map_err(not_xlsx)? {
        let (r, c) = cell.get_position();
        if row_no != Some(r) {
            if let Some(previous) = row_no {
                finish_row(previous, &mut row, &mut assembler)?;
            }
            row_no = Some(r);
        }
        let c = c as usize;
        if c >= roster::MAX_COLUMNS {
            continue;
        }
        while row.len() < c {
            row.push(Value::Empty);
        }
        row.push(value(cell.get_value()));
    }
    if let Some(previous) = row_no {
        finish_row(previous, &mut row, &mut assembler)?;
    }
    let Some(mut assembler) = assembler else {
        return Err(AppError::invalid(
            "data",
            match search.give_up() {
                Some(e) => e.to_string(),
                None => "the worksheet is empty: a header row is needed".to_string(),
            },
        ));
    };
    if let Some(last) = assembler.finish() {
        each(last);
    }
    Ok(roster::RosterRead {
        rows: assembler.rows,
        split: assembler.split_households().clone(),
        too_many_rows,
    })
}

/// Step 2: reads the whole roster and decides what will be enrolled.
fn check_roster(
    spool: &Spool,
    format: Format,
    county: &CountyCode,
    today: chrono::NaiveDate,
    insured: &(dyn Fn(&ResidentId) -> bool + Sync),
) -> Result<Checked, AppError> {
    let mut checked = Checked::default();
    // The accepted households' sizes, in case a later run of rows shows
    // one was split: then it is not enrolled after all.
    let mut accepted: HashMap<String, u64> = HashMap::new();
    let mut rejected: HashSet<String> = HashSet::new();
    let split = read_roster(
        spool,
        format,
        county,
        today,
        insured,
        |household| match household {
            Assembled::Accepted(h) => {
                checked.rows += h.persons.len() as u64;
                accepted.insert(h.household_no, h.persons.len() as u64);
            }
            Assembled::Rejected {
                household_no,
                rows,
                errors,
            } => {
                checked.rows += rows;
                checked.rows_rejected += rows;
                for e in errors {
                    checked.errors_total += 1;
                    *checked.by_reason.entry(e.problem.code()).or_default() += 1;
                    if checked.errors.len() < ERRORS_IN_SUMMARY {
                        checked.errors.push(e);
                    }
                }
                rejected.insert(household_no);
            }
        },
    )?;
    for number in &split {
        if let Some(persons) = accepted.remove(number) {
            checked.rows_rejected += persons;
        }
        rejected.insert(number.clone());
    }
    checked.households_accepted = accepted.len() as u64;
    checked.persons_accepted = accepted.values().sum();
    checked.households_rejected = rejected.len() as u64;
    checked.skip = rejected;
    checked.errors.sort_by_key(|e| e.line);
    Ok(checked)
}

/// Seals a household for the store, as EnrollHousehold does: every value
/// bound to its column and the household's row.
fn seal(
    key: &PersonalDataKey,
    county: &str,
    policy_year: i32,
    h: &RosterHousehold,
) -> Result<(HouseholdRecord, Vec<PersonRecord>), AppError> {
    let household_id = Uuid::now_v7();
    let row = household_id.to_string();
    let head = &h.persons[0];
    let household = HouseholdRecord {
        household_id,
        county_code: county.to_string(),
        policy_year,
        village_code: h.village.as_str().to_string(),
        household_type: h.household_type,
        head_name: head.name.clone(),
        head_id_masked: head.id.masked(),
        head_id_sealed: key.seal(
            Column::HouseholdHeadId,
            &row,
            head.id.as_str(),
            personal_data::nonce()?,
        ),
        bank_account_masked: mask_account(&h.bank_account),
        bank_account_sealed: key.seal(
            Column::HouseholdBankAccount,
            &row,
            &h.bank_account,
            personal_data::nonce()?,
        ),
        persons: u32::try_from(h.persons.len()).expect("bounded by MAX_HOUSEHOLD_PERSONS"),
    };
    let persons = h
        .persons
        .iter()
        .map(|p| {
            let (id_hash, id_sealed) = personal_data::seal_person(key, policy_year, &row, &p.id)?;
            Ok(PersonRecord {
                id_hash,
                id_sealed,
                name: p.name.clone(),
                relation: p.relation.as_str().to_string(),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok((household, persons))
}

fn summary(
    import: &RosterImportRecord,
    errors: &[RosterErrorRecord],
    duplicate: bool,
) -> pb::RosterImport {
    pb::RosterImport {
        import_id: import.import_id.to_string(),
        county_code: import.county_code.clone(),
        policy_year: import.policy_year,
        format: Format::parse(&import.format)
            .map(Format::to_pb)
            .unwrap_or_default()
            .into(),
        file_name: import.file_name.clone(),
        sha256: import.sha256.clone(),
        size_bytes: import.size_bytes,
        rows_total: import.rows_total,
        households_enrolled: import.households_enrolled,
        persons_enrolled: import.persons_enrolled,
        households_rejected: import.households_rejected,
        rows_rejected: import.rows_rejected,
        errors_by_reason: import
            .errors_by_reason
            .iter()
            .map(|(code, n)| pb::RosterReasonCount {
                code: code.clone(),
                errors: *n,
            })
            .collect(),
        errors: errors
            .iter()
            .map(|e| pb::RosterRowError {
                line: e.line,
                field: e.field.clone(),
                household_no: e.household_no.clone(),
                code: e.code.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        errors_truncated: import.errors_total > errors.len() as u64,
        duplicate,
        pool_size: import.pool_size,
        persons_insured: import.persons_insured,
        imported_at: import.imported_at.clone(),
    }
}

pub async fn import_roster(
    app: &App,
    mut stream: Streaming<pb::ImportRosterRequest>,
) -> Result<pb::RosterImport, Status> {
    use pb::import_roster_request::Part;
    let header = match stream.message().await? {
        Some(pb::ImportRosterRequest {
            part: Some(Part::Header(header)),
        }) => header,
        _ => {
            return Err(
                AppError::invalid("header", "the first message must carry the header").into(),
            );
        }
    };
    let mut c = Check::new();
    let request_id = c.request_id(&header.request_id);
    let county = c.county("header.county_code", &header.county_code);
    let year = c.year("header.policy_year", header.policy_year);
    let format = match pb::RosterFormat::try_from(header.format) {
        Ok(pb::RosterFormat::CsvUtf8) => Some(Format::CsvUtf8),
        Ok(pb::RosterFormat::CsvGbk) => Some(Format::CsvGbk),
        Ok(pb::RosterFormat::Xlsx) => Some(Format::Xlsx),
        _ => {
            c.bad("header.format", "must be CSV_UTF8, CSV_GBK or XLSX");
            None
        }
    };
    let file_name = c.text("header.file_name", &header.file_name, MAX_LABEL_CHARS);
    if header.sha256.len() != 64
        || !header
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        c.bad("header.sha256", "must be 64 lower-case hex digits");
    }
    let limit = if format == Some(Format::Xlsx) {
        MAX_XLSX_BYTES
    } else {
        MAX_CSV_BYTES
    };
    if header.size_bytes > limit {
        c.bad(
            "header.size_bytes",
            format!("a roster in this format may have at most {limit} bytes"),
        );
    }
    c.finish()?;
    let request_id = request_id.expect("checked").to_string();
    let county = county.expect("checked");
    let year = year.expect("checked");
    let format = format.expect("checked");
    let file_name = file_name.expect("checked");
    app.authorize_county(county.as_str()).await?;

    // A retry of a finished import: answer from the record, read nothing.
    if let Some(done) = app.recorded("ImportRoster", &header, &request_id).await? {
        return Ok(done);
    }
    let (earlier, insured) = {
        let mut conn = app.store.read().await.map_err(AppError::from)?;
        let earlier = store::find_by_hash(&mut conn, county.as_str(), year, &header.sha256)
            .await
            .map_err(AppError::from)?;
        let insured = match earlier {
            Some(_) => HashSet::new(),
            None => store::insured_hashes(&mut conn, year)
                .await
                .map_err(AppError::from)?,
        };
        (earlier, insured)
    };
    if let Some(earlier) = earlier {
        // The same file again: enrolled once, whatever the request id.
        let response = app
            .write(
                "ImportRoster",
                &header.clone(),
                &request_id,
                county.as_str(),
                move |conn, _ctx| {
                    Box::pin(async move {
                        let errors =
                            store::errors(conn, earlier.import_id, ERRORS_IN_SUMMARY).await?;
                        Ok(summary(&earlier, &errors, true))
                    })
                },
            )
            .await?;
        return Ok(response);
    }

    // Step 1: the stream into the sealed spool.
    let started = std::time::Instant::now();
    let mut spool = Spool::new()?;
    let mut received: u64 = 0;
    let mut hasher = Sha256::new();
    loop {
        let Ok(next) = tokio::time::timeout(IMPORT_IDLE_LIMIT, stream.message()).await else {
            return Err(AppError::invalid(
                "data",
                format!(
                    "no data for {} s; nothing was imported",
                    IMPORT_IDLE_LIMIT.as_secs()
                ),
            )
            .into());
        };
        match next? {
            Some(pb::ImportRosterRequest {
                part: Some(Part::Data(data)),
            }) => {
                if data.len() > MAX_CHUNK_BYTES {
                    return Err(AppError::invalid(
                        "data",
                        format!("a message may carry at most {MAX_CHUNK_BYTES} bytes"),
                    )
                    .into());
                }
                received += data.len() as u64;
                if received > header.size_bytes {
                    return Err(AppError::invalid(
                        "header.size_bytes",
                        "more bytes arrived than the header announced",
                    )
                    .into());
                }
                hasher.update(&data);
                spool.append(&data)?;
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "header",
                    "only the first message may carry the header",
                )
                .into());
            }
            None => break,
        }
    }
    if received != header.size_bytes {
        return Err(AppError::invalid(
            "header.size_bytes",
            format!(
                "the header announced {} bytes but {received} arrived; nothing was imported",
                header.size_bytes
            ),
        )
        .into());
    }
    if hex::encode(hasher.finalize()) != header.sha256 {
        return Err(AppError::invalid(
            "header.sha256",
            "the bytes received do not have this SHA-256; nothing was imported",
        )
        .into());
    }
    let receive_ms = started.elapsed().as_millis() as u64;

    // Step 2: the whole roster checked, off the async workers.
    let today = app.today();
    let key = Arc::clone(&app.personal_data);
    let spool = Arc::new(spool);
    let insured = Arc::new(insured);
    let checked = {
        let (spool, county, key, insured) = (
            Arc::clone(&spool),
            county.clone(),
            Arc::clone(&key),
            Arc::clone(&insured),
        );
        tokio::task::spawn_blocking(move || {
            let is_insured = |id: &ResidentId| insured.contains(&key.lookup_hash(id));
            check_roster(&spool, format, &county, today, &is_insured)
        })
        .await
        .map_err(|e| AppError::Internal(format!("the roster check stopped: {e}")))??
    };
    let checked = Arc::new(checked);
    let check_ms = started.elapsed().as_millis() as u64 - receive_ms;

    // Step 3: under the county's lock, the room in the pool, then the
    // households, read again and sealed as they are inserted.
    let sha256 = header.sha256.clone();
    let size_bytes = header.size_bytes;
    let writing = std::time::Instant::now();
    let lock = county.as_str().to_string();
    let response = app
        .write_object("ImportRoster", &header.clone(), &request_id, &lock, move |conn, ctx| {
            Box::pin(async move {
                let code = county.as_str().to_string();
                // Another import of the same file may have won the race.
                if let Some(earlier) = store::find_by_hash(conn, &code, year, &sha256).await? {
                    let errors = store::errors(conn, earlier.import_id, ERRORS_IN_SUMMARY).await?;
                    let object = format!("{code}/roster/{}", earlier.import_id);
                    return Ok((summary(&earlier, &errors, true), object, serde_json::Map::new()));
                }
                let record = counties::get_county(conn, &code)
                    .await?
                    .ok_or_else(|| AppError::not_found("county", &code))?;
                let policy = counties::get_policy(conn, &code, year, None)
                    .await?
                    .ok_or_else(|| {
                        AppError::precondition(
                            "POLICY",
                            format!("policy/{code}/{year}"),
                            format!("county {code} has no policy for {year}; put one first"),
                        )
                    })?;
                let pool_size = policy.policy.pool_size(record.rural_population);
                let enrolled = counties::count_persons(conn, &code, year).await?;
                if enrolled + checked.persons_accepted > pool_size {
                    return Err(AppError::precondition(
                        "POOL_FULL",
                        format!("county/{code}/{year}"),
                        format!(
                            "the insured pool holds {pool_size} persons and {enrolled} are enrolled; \
                             the roster's {} do not fit, so none was enrolled",
                            checked.persons_accepted
                        ),
                    ));
                }
                let (tx, mut rx) = mpsc::channel::<Vec<(HouseholdRecord, Vec<PersonRecord>)>>(2);
                let producer = {
                    let (spool, checked, county, key, insured, code) = (
                        Arc::clone(&spool),
                        Arc::clone(&checked),
                        county.clone(),
                        Arc::clone(&key),
                        Arc::clone(&insured),
                        code.clone(),
                    );
                    tokio::task::spawn_blocking(move || -> Result<(), AppError> {
                        let is_insured = |id: &ResidentId| insured.contains(&key.lookup_hash(id));
                        let mut batch = Vec::with_capacity(BATCH_HOUSEHOLDS);
                        let mut failed = None;
                        let mut stopped = false;
                        read_roster(&spool, format, &county, today, &is_insured, |household| {
                            let Assembled::Accepted(h) = household else {
                                return;
                            };
                            if stopped || failed.is_some() || checked.skip.contains(&h.household_no) {
                                return;
                            }
                            match seal(&key, &code, year, &h) {
                                Ok(sealed) => batch.push(sealed),
                                Err(e) => failed = Some(e),
                            }
                            if batch.len() == BATCH_HOUSEHOLDS {
                                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_HOUSEHOLDS));
                                // The writer gave up (its insert failed): stop.
                                stopped = tx.blocking_send(full).is_err();
                            }
                        })?;
                        if let Some(e) = failed {
                            return Err(e);
                        }
                        if !batch.is_empty() && !stopped {
                            let _ = tx.blocking_send(batch);
                        }
                        Ok(())
                    })
                };
                let (mut households, mut persons) = (0u64, 0u64);
                while let Some(batch) = rx.recv().await {
                    households += batch.len() as u64;
                    persons += batch.iter().map(|(_, p)| p.len() as u64).sum::<u64>();
                    match store::insert_households(conn, &batch, ctx.now).await {
                        Err(e) if e.is_unique_violation() => {
                            return Err(AppError::AlreadyExists(
                                "a person of the roster was insured for this year while it was \
                                 read; nothing was enrolled: send it again"
                                    .into(),
                            ));
                        }
                        other => other?,
                    }
                }
                producer
                    .await
                    .map_err(|e| AppError::Internal(format!("the roster reader stopped: {e}")))??;
                // Both readings of the same bytes agree, or nothing is written.
                if (households, persons) != (checked.households_accepted, checked.persons_accepted) {
                    return Err(AppError::Internal(format!(
                        "the roster read {households} households and {persons} persons, \
                         its check {} and {}",
                        checked.households_accepted, checked.persons_accepted
                    )));
                }
                let import = RosterImportRecord {
                    import_id: Uuid::now_v7(),
                    county_code: code.clone(),
                    policy_year: year,
                    sha256,
                    file_name,
                    format: format.as_str().to_string(),
                    size_bytes,
                    rows_total: checked.rows,
                    households_enrolled: households,
                    persons_enrolled: persons,
                    households_rejected: checked.households_rejected,
                    rows_rejected: checked.rows_rejected,
                    errors_by_reason: checked
                        .by_reason
                        .iter()
                        .map(|(code, n)| (code.to_string(), *n))
                        .collect(),
                    errors_total: checked.errors_total,
                    pool_size,
                    persons_insured: enrolled + persons,
                    imported_at: fangpin_store::timestamp(ctx.now),
                };
                let errors: Vec<RosterErrorRecord> = checked
                    .errors
                    .iter()
                    .map(|e| RosterErrorRecord {
                        line: e.line,
                        field: e.field.to_string(),
                        household_no: e.household_no.clone(),
                        code: e.problem.code().to_string(),
                        reason: e.problem.to_string(),
                    })
                    .collect();
                store::insert(conn, &import, &errors, &ctx.request_id).await?;
                let mut after = serde_json::Map::new();
                after.insert("sha256".into(), import.sha256.clone().into());
                after.insert("households".into(), households.into());
                after.insert("persons".into(), persons.into());
                let object = format!("{code}/roster/{}", import.import_id);
                Ok((summary(&import, &errors, false), object, after))
            })
        })
        .await?;
    tracing::info!(
        receive_ms,
        check_ms,
        write_ms = writing.elapsed().as_millis() as u64,
        households = response.households_enrolled,
        persons = response.persons_enrolled,
        rows_rejected = response.rows_rejected,
        "roster imported"
    );
    Ok(response)
}

pub async fn get_roster_import(
    app: &App,
    req: pb::GetRosterImportRequest,
) -> Result<pb::RosterImport, Status> {
    let mut c = Check::new();
    let id = c.uuid("import_id", &req.import_id);
    c.finish()?;
    let id = id.expect("checked");
    let mut conn = app.store.read().await.map_err(AppError::from)?;
    let import = store::get(&mut conn, id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::not_found("roster import", id))?;
    // Another county's import reads exactly as a missing one.
    if !app.sees_county(&import.county_code).await? {
        return Err(AppError::not_found("roster import", id).into());
    }
    let errors = store::errors(&mut conn, id, ERRORS_IN_SUMMARY)
        .await
        .map_err(AppError::from)?;
    Ok(summary(&import, &errors, false))
}
