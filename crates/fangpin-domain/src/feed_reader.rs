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
    /// Bytes since the last newline. The CSV reader buffers a whole record,
    /// so an unclosed quote would make it buffer the rest of the file; this
    /// is where that is stopped.
    since_newline: usize,
    overlong: bool,
    /// Chunks the line counter has not passed yet, and where the first
    /// starts. The CSV reader's own line numbers skip blank lines, so a
    /// department would look for a bad row on the wrong line; counting
    /// newlines up to a record's byte offset gives the file's real line.
    retained: std::collections::VecDeque<Bytes>,
    retained_start: u64,
    counted_to: u64,
    line: u64,
}

impl<S> ChunkReader<S> {
    /// The 1-based line of the byte at `offset`, which must not be before
    /// an offset asked about earlier.
    fn line_at(&mut self, offset: u64) -> u64 {
        assert!(
            offset >= self.counted_to,
            "lines are asked for in file order"
        );
        while self.counted_to < offset {
            let Some(front) = self.retained.front() else {
                break;
            };
            let local =
                usize::try_from(self.counted_to - self.retained_start).expect("within a chunk");
            let wanted = usize::try_from(offset - self.counted_to).unwrap_or(usize::MAX);
            let take = (front.len() - local).min(wanted);
            self.line += front[local..local + take]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
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
        while let Some(front) = self.retained.front() {
            let local =
                usize::try_from(self.counted_to - self.retained_start).expect("within a chunk");
            match front.get(local) {
                Some(b'\n') => self.line += 1,
                Some(b'\r') => {}
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
        while self.current.is_empty() {
            match (self.next)() {
                Some(chunk) => {
                    self.retained.push_back(chunk.clone());
                    self.current = chunk;
                }
                // The source is done: the stream ended (or was abandoned,
                // which the caller knows and reports).
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        // Rows are short, so the search from the end stops within one row.
        self.since_newline = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(at) => n - at - 1,
            None => self.since_newline + n,
        };
        if self.since_newline > MAX_RECORD_BYTES {
            self.overlong = true;
            return Err(std::io::Error::other("record too long"));
        }
        Ok(n)
    }
}

/// Parses the feed whose chunks `next` hands out, in order, until it
/// returns None, then lets `finish` turn the aggregator into an owned result
/// (the aggregator borrows `persons`). Where the chunks split the file never
/// changes the result: records, line numbers and all (fuzz/feed_csv checks).
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
    let reader = ChunkReader {
        next,
        current: Bytes::new(),
        since_newline: 0,
        overlong: false,
        retained: std::collections::VecDeque::new(),
        retained_start: 0,
        counted_to: 0,
        line: 1,
    };
    // Rows are checked for their field count by the aggregator, which
    // reports it per line instead of failing the file.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let header = match csv.read_byte_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => return Err(FeedError::NoHeader),
        Err(_) if csv.get_ref().overlong => return Err(FeedError::RecordTooLong(1)),
        Err(_) => return Err(FeedError::HeaderEncoding),
    };
    let names = decode_header(encoding, header.iter()).ok_or(FeedError::HeaderEncoding)?;
    let layout = FeedLayout::from_header(kind, &names).map_err(FeedError::Header)?;
    let mut agg = FeedAggregator::new(layout, encoding, persons, households, accepted_dates);
    loop {
        let before = csv.position().byte();
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
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
                agg.row(|| reader.record_line(at), record.len(), |i| &record[i]);
            }
            Err(_) if csv.get_ref().overlong => {
                let line = csv.get_mut().line_at(before);
                return Err(FeedError::RecordTooLong(line));
            }
            Err(_) => {
                let line = csv.get_mut().record_line(before);
                agg.unreadable(line);
            }
        }
    }
    Ok(finish(agg))
}
