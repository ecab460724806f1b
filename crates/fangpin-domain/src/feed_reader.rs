//! A feed file as the import reads it: chunks of bytes, in order, split
//! into CSV records and folded into a [`FeedAggregator`], with each bad
//! row's real line in the file. Where the chunks come from (a gRPC stream
//! through a bounded channel, in the server) is the caller's business.

use std::io::Read;

use bytes::Bytes;
use encoding_rs::Encoding;

use crate::feeds::{FeedAggregator, FeedKind, FeedLayout, HeaderError, PersonMap, decode_header};

/// Longest CSV record: far more than any real row. A longer one means the
/// file is not CSV (or a quote was never closed), and reading on would
/// buffer the rest of the file as one field.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The length of a UTF-8 byte-order mark.
const BOM_BYTES: usize = 3;

/// The CSV reader's read-ahead buffer.
const CSV_BUFFER_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the file is empty: a header row is needed")]
    NoHeader,
    #[error("the header row is not valid in the declared encoding")]
    HeaderEncoding,
    #[error("{0}")]
    Header(HeaderError),
    #[error("line {0} is longer than {MAX_RECORD_BYTES} bytes: is a quote left open?")]
    RecordTooLong(u64),
}

/// Reads the chunks `next` hands out as one byte stream.
struct ChunkReader<S> {
    next: S,
    current: Bytes,
    /// Bytes handed to the CSV reader so far, and where the record it is
    /// reading starts. The CSV reader buffers a whole record, so an
    /// unclosed quote would make it buffer the rest of the file, newlines
    /// and all; this is where that is stopped.
    handed_out: u64,
    record_start: u64,
    overlong: bool,
    /// Chunks the line counter has not passed yet, and where the first
    /// starts. The CSV reader's own line numbers skip blank lines, so a
    /// department would look for a bad row on the wrong line; counting
    /// newlines up to a record's byte offset gives the file's real line.
    retained: std::collections::VecDeque<Bytes>,
    retained_start: u64,
    counted_to: u64,
    line: u64,
    /// The last byte counted was a carriage return: a `\n` right after it
    /// ends the same line (`\r\n`), anything else starts counting anew.
    after_cr: bool,
}

impl<S> ChunkReader<S> {
    /// Counts one byte of the file. Lines end as the CSV reader ends
    /// records: at `\n`, `\r\n` or a lone `\r` (old Mac files), so two
    /// records never share a line number.
    fn count(&mut self, b: u8) {
        match b {
            b'\r' => self.line += 1,
            b'\n' if !self.after_cr => self.line += 1,
            _ => {}
        }
        self.after_cr = b == b'\r';
    }

    /// Counts a run of bytes as `count` would one by one, in passes the
    /// compiler vectorises: a feed's every byte goes through here.
    fn count_all(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else {
            return;
        };
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
        let returns = bytes.iter().filter(|&&b| b == b'\r').count();
        // A `\r\n` is one line end, not two; only worth looking for when
        // there are carriage returns (or one ended the previous run).
        let crlf = if returns == 0 && !self.after_cr {
            0
        } else {
            bytes.windows(2).filter(|w| w == b"\r\n").count()
                + usize::from(self.after_cr && bytes[0] == b'\n')
        };
        self.line += (newlines + returns - crlf) as u64;
        self.after_cr = last == b'\r';
    }

    /// The 1-based line of the byte at `offset`, which must not be before
    /// an offset asked about earlier.
    fn line_at(&mut self, offset: u64) -> u64 {
        assert!(
            offset >= self.counted_to,
            "lines are asked for in file order"
        );
        while self.counted_to < offset {
            // A cheap clone (a reference count) frees `self` for counting.
            let Some(front) = self.retained.front().cloned() else {
                break;
            };
            let local =
                usize::try_from(self.counted_to - self.retained_start).expect("within a chunk");
            let wanted = usize::try_from(offset - self.counted_to).unwrap_or(usize::MAX);
            let take = (front.len() - local).min(wanted);
            self.count_all(&front[local..local + take]);
            self.counted_to += take as u64;
            if local + take == front.len() {
                self.retained_start += front.len() as u64;
                self.retained.pop_front();
            }
        }
        self.line
    }

    /// The line on which the record starting at `offset` really starts:
    /// the CSV reader places a record after blank lines at the first blank.
    fn record_line(&mut self, offset: u64) -> u64 {
        self.line_at(offset);
        while let Some(front) = self.retained.front().cloned() {
            let local =
                usize::try_from(self.counted_to - self.retained_start).expect("within a chunk");
            match front.get(local) {
                Some(&b @ (b'\n' | b'\r')) => self.count(b),
                Some(_) => break,
                None => {
                    self.retained_start += front.len() as u64;
                    self.retained.pop_front();
                    continue;
                }
            }
            self.counted_to += 1;
        }
        self.line
    }
}

impl<S: FnMut() -> Option<Bytes>> Read for ChunkReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // The CSV reader strips a UTF-8 byte-order mark only when its first
        // read holds all three bytes (csv-core's `strip_utf8_bom`), and a
        // read of the mark alone leaves it nothing, which it takes for the
        // end of the file. So the file's first bytes are handed out
        // together, whatever the chunks: the mark and one more.
        let wanted = if self.handed_out == 0 {
            BOM_BYTES + 1
        } else {
            1
        };
        while self.current.len() < wanted {
            match (self.next)() {
                Some(chunk) => {
                    self.retained.push_back(chunk.clone());
                    self.current = if self.current.is_empty() {
                        chunk
                    } else {
                        [self.current.as_ref(), chunk.as_ref()].concat().into()
                    };
                }
                // The source is done: the stream ended (or was abandoned,
                // which the caller knows and reports).
                None if self.current.is_empty() => return Ok(0),
                None => break,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        self.handed_out += n as u64;
        // The CSV reader reads ahead by at most its buffer, so a record
        // still open this far past its start is too long: refusing it here
        // bounds the memory one record can take. Shorter overlong records
        // are caught by the parse loop once read.
        if self.handed_out - self.record_start > (MAX_RECORD_BYTES + CSV_BUFFER_BYTES) as u64 {
            self.overlong = true;
            return Err(std::io::Error::other("record too long"));
        }
        Ok(n)
    }
}

/// What a CSV file's records are handed to, in file order, by
/// [`read_records`].
pub trait RecordSink {
    /// The first record. An error ends the reading and is its result.
    fn header(&mut self, header: &csv::ByteRecord) -> Result<(), FeedError>;
    /// A data record; `line` gives its real line in the file (counted
    /// only when asked, since counting costs a pass over the bytes).
    fn row(&mut self, line: &mut dyn FnMut() -> u64, record: &csv::ByteRecord);
    /// A record the CSV reader could not read, at `line`.
    fn unreadable(&mut self, line: u64);
}

/// Reads the CSV file whose chunks `next` hands out, in order, until it
/// returns None, handing its records to `sink`: the header, then every data
/// record but blank lines. Where the chunks split the file never changes
/// what the sink is given: records, line numbers and all (fuzz/feed_csv
/// checks). A record longer than [`MAX_RECORD_BYTES`] ends the reading.
pub fn read_records(
    next: impl FnMut() -> Option<Bytes>,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    let reader = ChunkReader {
        next,
        current: Bytes::new(),
        handed_out: 0,
        record_start: 0,
        overlong: false,
        retained: std::collections::VecDeque::new(),
        retained_start: 0,
        counted_to: 0,
        line: 1,
        after_cr: false,
    };
    // Rows are checked for their field count by the sink, which reports it
    // per line instead of failing the file.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(CSV_BUFFER_BYTES)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    match csv.read_byte_record(&mut record) {
        Ok(true) if csv.position().byte() > MAX_RECORD_BYTES as u64 => {
            return Err(FeedError::RecordTooLong(1));
        }
        Ok(true) => sink.header(&record)?,
        Ok(false) => return Err(FeedError::NoHeader),
        Err(_) if csv.get_ref().overlong => return Err(FeedError::RecordTooLong(1)),
        Err(_) => return Err(FeedError::HeaderEncoding),
    }
    loop {
        let before = csv.position().byte();
        csv.get_mut().record_start = before;
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) if csv.position().byte() - before > MAX_RECORD_BYTES as u64 => {
                let line = csv.get_mut().record_line(before);
                return Err(FeedError::RecordTooLong(line));
            }
            Ok(true) => {
                let at = record.position().map_or(before, |p| p.byte());
                // Lines are counted only as far as needed: at each rejected
                // row, and whenever a few chunks wait to be counted, which
                // bounds the chunks kept.
                if csv.get_ref().retained.len() > 4 {
                    csv.get_mut().line_at(at);
                }
                // A blank line between rows is no row at all.
                if record.len() == 1 && record[0].trim_ascii().is_empty() {
                    continue;
                }
                let reader = csv.get_mut();
                sink.row(&mut || reader.record_line(at), &record);
            }
            Err(_) if csv.get_ref().overlong => {
                let line = csv.get_mut().record_line(before);
                return Err(FeedError::RecordTooLong(line));
            }
            Err(_) => {
                let line = csv.get_mut().record_line(before);
                sink.unreadable(line);
            }
        }
    }
    Ok(())
}

/// Parses the feed whose chunks `next` hands out, in order, until it
/// returns None, then lets `finish` turn the aggregator into an owned result
/// (the aggregator borrows `persons`).
#[allow(clippy::too_many_arguments)]
pub fn parse_feed<T>(
    next: impl FnMut() -> Option<Bytes>,
    kind: FeedKind,
    encoding: &'static Encoding,
    persons: &PersonMap,
    households: usize,
    accepted_dates: (chrono::NaiveDate, chrono::NaiveDate),
    finish: impl FnOnce(FeedAggregator<'_>) -> T,
) -> Result<T, FeedError> {
    /// The aggregator, made once the header says where the columns are.
    struct Feed<'p> {
        kind: FeedKind,
        encoding: &'static Encoding,
        persons: &'p PersonMap,
        households: usize,
        accepted_dates: (chrono::NaiveDate, chrono::NaiveDate),
        agg: Option<FeedAggregator<'p>>,
    }
    impl RecordSink for Feed<'_> {
        fn header(&mut self, header: &csv::ByteRecord) -> Result<(), FeedError> {
            let names =
                decode_header(self.encoding, header.iter()).ok_or(FeedError::HeaderEncoding)?;
            let layout = FeedLayout::from_header(self.kind, &names).map_err(FeedError::Header)?;
            self.agg = Some(FeedAggregator::new(
                layout,
                self.encoding,
                self.persons,
                self.households,
                self.accepted_dates,
            ));
            Ok(())
        }
        fn row(&mut self, line: &mut dyn FnMut() -> u64, record: &csv::ByteRecord) {
            let agg = self.agg.as_mut().expect("the header comes first");
            agg.row(line, record.len(), |i| &record[i]);
        }
        fn unreadable(&mut self, line: u64) {
            self.agg
                .as_mut()
                .expect("the header comes first")
                .unreadable(line);
        }
    }
    let mut feed = Feed {
        kind,
        encoding,
        persons,
        households,
        accepted_dates,
        agg: None,
    };
    read_records(next, &mut feed)?;
    Ok(finish(feed.agg.expect("read_records read the header")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{PersonKey, ResidentId};
    use chrono::NaiveDate;

    const HEADER: &str = "id_number,loss_date,loss,insurance_paid,assistance_paid";

    /// (rows_total, rows_rejected, the rejected rows' lines and problems).
    type Summary = (u64, u64, Vec<(u64, String)>);

    /// Parses `file` as an accident feed, cut into chunks of `chunk` bytes.
    fn parse(file: &[u8], chunk: usize) -> Result<Summary, FeedError> {
        let id = ResidentId::from_first17("13042619650101001").expect("valid");
        let mut persons = PersonMap::default();
        persons.insert(PersonKey::of(&id), 0);
        let mut chunks = file
            .chunks(chunk)
            .map(Bytes::copy_from_slice)
            .collect::<Vec<_>>()
            .into_iter();
        let dates = (
            NaiveDate::from_ymd_opt(2020, 1, 1).expect("date"),
            NaiveDate::from_ymd_opt(2027, 12, 31).expect("date"),
        );
        parse_feed(
            move || chunks.next(),
            FeedKind::Accident,
            encoding_rs::UTF_8,
            &persons,
            1,
            dates,
            |agg| {
                let errors = agg
                    .errors
                    .iter()
                    .map(|(line, e)| (*line, format!("{}", e.problem)))
                    .collect();
                (agg.rows_total, agg.rows_rejected(), errors)
            },
        )
    }

    fn row(id: &str, loss: &str) -> String {
        format!("{id},2024-03-05,{loss},0,0")
    }

    fn valid_id() -> String {
        ResidentId::from_first17("13042619650101001")
            .expect("valid")
            .as_str()
            .to_string()
    }

    #[test]
    fn numbers_lines_across_every_line_ending_and_chunk_size() {
        let id = valid_id();
        // Line 2 good, 3 blank, 4 bad amount, 5 good, 6 bad id.
        let lines = [
            HEADER.to_string(),
            row(&id, "5"),
            String::new(),
            row(&id, "x"),
            row(&id, "7"),
            row("1", "1"),
        ];
        for ending in ["\n", "\r\n", "\r"] {
            let file = lines.join(ending);
            for chunk in [1, 2, 3, 7, 4096] {
                let (total, rejected, errors) = parse(file.as_bytes(), chunk).expect("parses");
                assert_eq!((total, rejected), (4, 2), "{ending:?} {chunk}");
                let at: Vec<u64> = errors.iter().map(|(l, _)| *l).collect();
                assert_eq!(
                    at,
                    vec![4, 6],
                    "{ending:?} in chunks of {chunk}: {errors:?}"
                );
            }
        }
    }

    /// Found by fuzz/feed_csv: a lone `\r` ends a record for the CSV reader,
    /// but only `\n` was counted as a line end, so two rejected rows were
    /// both reported on line 2 and a department could find only one.
    /// Found by fuzz/feed_csv: a byte-order mark split across the first
    /// chunks was not stripped, so the header's first name did not match
    /// (a gRPC client may send chunks of any size).
    #[test]
    fn a_byte_order_mark_split_across_chunks_is_stripped() {
        let id = valid_id();
        let file = format!(
            "\u{feff}{HEADER}\r\n{}\r\n{}\r\n",
            row(&id, "5"),
            row(&id, "x")
        );
        for chunk in [1, 2, 3, 4, 5, 4096] {
            let (total, rejected, errors) = parse(file.as_bytes(), chunk)
                .unwrap_or_else(|e| panic!("chunks of {chunk}: {e:?}"));
            assert_eq!((total, rejected), (2, 1), "chunks of {chunk}");
            assert_eq!(errors[0].0, 3, "chunks of {chunk}");
        }
        // A file of the mark alone, or shorter than one, is still read.
        assert!(matches!(parse(b"ab", 1), Err(FeedError::Header(_))));
        assert!(matches!(
            parse(b"\xef\xbb\xbf", 1),
            Err(FeedError::NoHeader)
        ));
        assert!(matches!(
            parse(b"\xef\xbb\xbfa", 1),
            Err(FeedError::Header(_))
        ));
    }

    #[test]
    fn a_lone_carriage_return_starts_a_new_line() {
        let id = valid_id();
        let file = format!(
            "{HEADER}\r\n{},\r0023\n{}\r\n",
            row(&id, ""),
            row("46197002020029", "1")
        );
        let (total, rejected, errors) = parse(file.as_bytes(), 5).expect("parses");
        assert_eq!((total, rejected), (3, 3));
        let at: Vec<u64> = errors.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, vec![2, 3, 4], "{errors:?}");
    }

    #[test]
    fn a_quote_left_open_refuses_the_file_however_many_lines_follow() {
        let id = valid_id();
        // Short lines after the open quote: counting bytes since the last
        // newline never saw this; the record's own length does.
        let mut file = format!("{HEADER}\n{}\n\"{}\n", row(&id, "1"), row(&id, "2"));
        while file.len() < 3 * CSV_BUFFER_BYTES {
            file.push_str(&row(&id, "3"));
            file.push('\n');
        }
        for chunk in [1000, 1 << 16] {
            match parse(file.as_bytes(), chunk) {
                Err(FeedError::RecordTooLong(line)) => assert_eq!(line, 3),
                other => panic!("{other:?}"),
            }
        }
        // A record just over the limit, closed: refused too, at its line.
        let long = format!(
            "{HEADER}\n{}\n\"{}\"\n",
            row(&id, "1"),
            "a".repeat(MAX_RECORD_BYTES)
        );
        assert!(matches!(
            parse(long.as_bytes(), 4096),
            Err(FeedError::RecordTooLong(3))
        ));
        // One at the limit is read (and rejected for its field count).
        let fits = format!("{HEADER}\n\"{}\"\n", "a".repeat(MAX_RECORD_BYTES - 3));
        let (total, rejected, errors) = parse(fits.as_bytes(), 4096).expect("parses");
        assert_eq!((total, rejected), (1, 1));
        assert!(errors[0].1.contains("fields"), "{errors:?}");
    }
}
