//! The blocking half of a feed import: bytes arrive on a bounded channel
//! from the gRPC stream and are split into CSV records and folded into a
//! `FeedAggregator` on one blocking thread (the stream's side hashes the
//! bytes, so hashing and parsing use two cores). The channel's capacity is
//! what bounds memory: the stream waits when the parser falls behind. The
//! parsing itself is `fangpin_domain::feed_reader`.

use bytes::Bytes;
use encoding_rs::Encoding;
use fangpin_domain::feeds::{FeedAggregator, FeedKind};
use tokio::sync::mpsc;

pub use fangpin_domain::feed_reader::{FeedError, MAX_RECORD_BYTES};

/// Chunks queued between the stream and the parser: at most 16 MiB in flight.
pub const QUEUE_CHUNKS: usize = 16;
/// Largest `data` message accepted.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;
/// Largest file accepted: a province's monthly medical settlements are a few
/// GiB; anything larger should be split by month or county.
pub const MAX_FEED_BYTES: u64 = 16 << 30;

/// Parses the feed from `rx` to the end of the stream (the sender gone:
/// the stream ended, or was abandoned, which the async side knows and
/// reports); see `fangpin_domain::feed_reader::parse_feed`.
pub fn parse_feed<T>(
    mut rx: mpsc::Receiver<Bytes>,
    kind: FeedKind,
    encoding: &'static Encoding,
    persons: &fangpin_domain::feeds::PersonMap,
    households: usize,
    accepted_dates: (chrono::NaiveDate, chrono::NaiveDate),
    finish: impl FnOnce(FeedAggregator<'_>) -> T,
) -> Result<T, FeedError> {
    fangpin_domain::feed_reader::parse_feed(
        move || rx.blocking_recv(),
        kind,
        encoding,
        persons,
        households,
        accepted_dates,
        finish,
    )
}
