//! The audit log as a tamper-evident hash chain (issue 5).
//!
//! Every mutating call appends one [`AuditEntry`]; each entry's hash covers its
//! own fields and the previous entry's hash, so changing, removing or
//! reordering any stored entry breaks the chain at that point. The byte
//! encoding is fixed and documented in `docs/audit-log.md`, which carries a
//! worked example and a Python verifier; a test keeps that example equal to
//! what this module computes.
//!
//! The chain proves the log was not edited after the fact; it does not stop
//! whoever holds the database from rewriting the chain from some entry on.
//! Against that, the head ([`ChainHead`]) is to be copied somewhere the
//! database's owner cannot write (a daily report, a finance bureau's file),
//! and [`Verifier::finish_at`] checks a stream against such a copy.

use std::borrow::Borrow;
use std::fmt;

use sha2::{Digest, Sha256};

/// Separates this hash from every other SHA-256 the system computes, and
/// names the format version: a new encoding gets a new tag, never a silent
/// change. Exactly these 16 ASCII bytes start every hashed message.
pub const DOMAIN_TAG: &[u8; 16] = b"fangpin-audit-v1";

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The text fields of an entry, in hashing order. Borrowed, so that hashing a
/// stored row copies nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditFields<'a> {
    /// When, as RFC 3339 in UTC (see [`format_at`]), exactly as stored.
    pub at: &'a str,
    /// Who: the token's subject.
    pub actor: &'a str,
    /// In which capacity: `Role::as_str`.
    pub role: &'a str,
    /// The gRPC method path.
    pub rpc: &'a str,
    /// What was acted on, as "county/kind/id" (e.g. "130426/claim/0195…"),
    /// so an entry names its county even outside its chain.
    pub object: &'a str,
    /// The object's state before and after, as JSON, or empty (before a
    /// creation, after a deletion). Never a full ID number or bank account.
    pub before: &'a str,
    pub after: &'a str,
    /// The client's request id, tying the entry to the idempotency record.
    pub request_id: &'a str,
}

impl AuditFields<'_> {
    /// The fields in hashing order. The order is part of the format.
    fn in_order(&self) -> [&str; 8] {
        [
            self.at,
            self.actor,
            self.role,
            self.rpc,
            self.object,
            self.before,
            self.after,
            self.request_id,
        ]
    }
}

/// The hash of entry `seq` whose predecessor's hash is `prev`:
///
/// ```text
/// SHA-256( "fangpin-audit-v1"            16 bytes
///        ‖ seq                           u64, big-endian
///        ‖ prev                          32 bytes
///        ‖ for each of at, actor, role, rpc, object, before, after, request_id:
///            len(UTF-8 bytes)            u64, big-endian
///            UTF-8 bytes )
/// ```
///
/// Each text field is length-prefixed so that no two different entries
/// encode to the same bytes ("ab" + "c" differs from "a" + "bc"); the other
/// parts have fixed lengths.
pub fn chain_hash(prev: &[u8; 32], seq: u64, fields: &AuditFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN_TAG);
    h.update(seq.to_be_bytes());
    h.update(prev);
    for field in fields.in_order() {
        // usize → u64 never truncates on the platforms Rust supports.
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Formats an instant the one way `at` is written: RFC 3339, UTC, with
/// microseconds and a `Z`. The hash covers the text, so the text must be
/// stored as is (a TEXT column, not a timestamp the database re-renders).
pub fn format_at(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Lower-case hex of a hash, as the docs, the CLI and the Python verifier show it.
pub fn hex(hash: &[u8; 32]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(64);
    for b in hash {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The last entry of a chain (or of its verified prefix): what the next entry
/// must follow. Before the first entry it is [`ChainHead::GENESIS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl ChainHead {
    /// An empty chain: the first entry has seq 1 and `prev_hash` all zero.
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: GENESIS_HASH,
    };
}

/// One entry of the audit log, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub rpc: String,
    pub object: String,
    pub before: String,
    pub after: String,
    pub request_id: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The entry that follows `head`, with its link and hash filled in.
    pub fn append(head: &ChainHead, fields: &AuditFields<'_>) -> AuditEntry {
        let seq = head.seq + 1;
        AuditEntry {
            seq,
            at: fields.at.to_owned(),
            actor: fields.actor.to_owned(),
            role: fields.role.to_owned(),
            rpc: fields.rpc.to_owned(),
            object: fields.object.to_owned(),
            before: fields.before.to_owned(),
            after: fields.after.to_owned(),
            request_id: fields.request_id.to_owned(),
            prev_hash: head.hash,
            hash: chain_hash(&head.hash, seq, fields),
        }
    }

    pub fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            at: &self.at,
            actor: &self.actor,
            role: &self.role,
            rpc: &self.rpc,
            object: &self.object,
            before: &self.before,
            after: &self.after,
            request_id: &self.request_id,
        }
    }

    /// The hash the entry's contents call for, whatever `hash` says.
    pub fn computed_hash(&self) -> [u8; 32] {
        chain_hash(&self.prev_hash, self.seq, &self.fields())
    }

    /// This entry as the head of the chain it ends.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

/// How the chain is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The entry's stored hash is not the hash of its contents: the entry
    /// itself was edited (any field, including `seq`, `prev_hash` and `hash`).
    BadHash,
    /// The entry is intact but its `seq` does not follow the previous one:
    /// entries were deleted, inserted or reordered before it.
    Gap,
    /// The entry is intact and in sequence but its `prev_hash` is not the
    /// previous entry's hash: the previous entry was replaced by one whose hash
    /// was recomputed, so inspect that one too.
    BadLink,
    /// Every entry links, but the chain does not end at the head recorded
    /// elsewhere: entries were removed from (or added to) its end.
    HeadMismatch,
}

/// The first place the chain fails to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq} ({kind}); entries up to {last_good} verify")]
pub struct ChainBreak {
    /// The `seq` stored in the offending entry. For `BadHash` it may itself be
    /// the edited field; `last_good + 1` is where the entry should have been.
    /// For `HeadMismatch` it is the recorded head's seq.
    pub seq: u64,
    /// The seq of the last entry that verified (the anchor's if none did).
    pub last_good: u64,
    pub kind: BreakKind,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakKind::BadHash => "bad hash: the entry was changed",
            BreakKind::Gap => "gap: entries missing, inserted or out of order",
            BreakKind::BadLink => "bad link: the previous entry was replaced",
            BreakKind::HeadMismatch => "the chain does not end at the recorded head",
        })
    }
}

/// Walks a chain in order, one entry at a time, holding only the last head,
/// so a log of any length verifies in constant memory as rows stream from the
/// database.
#[derive(Clone, Debug)]
pub struct Verifier {
    head: ChainHead,
    checked: u64,
}

impl Verifier {
    /// Starts after `anchor`: [`ChainHead::GENESIS`] for the whole chain, or a
    /// head verified earlier to check only what was appended since.
    pub fn new(anchor: ChainHead) -> Verifier {
        Verifier {
            head: anchor,
            checked: 0,
        }
    }

    /// Checks the next entry. The entry's own hash is checked first, so an
    /// edit anywhere in an entry is reported as `BadHash` at that entry; then
    /// its place in the sequence; then its link.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let broken = |kind| ChainBreak {
            seq: entry.seq,
            last_good: self.head.seq,
            kind,
        };
        if entry.computed_hash() != entry.hash {
            return Err(broken(BreakKind::BadHash));
        }
        if Some(entry.seq) != self.head.seq.checked_add(1) {
            return Err(broken(BreakKind::Gap));
        }
        if entry.prev_hash != self.head.hash {
            return Err(broken(BreakKind::BadLink));
        }
        self.head = entry.head();
        self.checked += 1;
        Ok(())
    }

    /// The head of what has verified so far.
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// How many entries have verified.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Ends the walk, requiring that the chain ended exactly at `recorded`, a
    /// head kept outside the log. Without it, deleting the newest entries
    /// leaves a chain that verifies.
    pub fn finish_at(self, recorded: &ChainHead) -> Result<u64, ChainBreak> {
        if self.head != *recorded {
            return Err(ChainBreak {
                seq: recorded.seq,
                last_good: self.head.seq,
                kind: BreakKind::HeadMismatch,
            });
        }
        Ok(self.checked)
    }
}

/// Verifies a whole chain from its first entry, in order, and returns how many
/// entries it checked, or the first broken link. An empty log verifies.
pub fn verify<I>(entries: I) -> Result<u64, ChainBreak>
where
    I: IntoIterator,
    I::Item: Borrow<AuditEntry>,
{
    verify_from(ChainHead::GENESIS, entries).map(|v| v.checked())
}

/// Verifies entries that follow `anchor` and returns the verifier, whose
/// [`Verifier::head`] is the new anchor and whose [`Verifier::finish_at`]
/// compares with a recorded head.
pub fn verify_from<I>(anchor: ChainHead, entries: I) -> Result<Verifier, ChainBreak>
where
    I: IntoIterator,
    I::Item: Borrow<AuditEntry>,
{
    let mut verifier = Verifier::new(anchor);
    for entry in entries {
        verifier.check(entry.borrow())?;
    }
    Ok(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(fields: &[AuditFields<'_>]) -> Vec<AuditEntry> {
        let mut head = ChainHead::GENESIS;
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            let entry = AuditEntry::append(&head, f);
            head = entry.head();
            out.push(entry);
        }
        out
    }

    /// The worked example of docs/audit-log.md: a claim filed, then paid.
    fn example() -> Vec<AuditEntry> {
        build(&[
            AuditFields {
                at: "2026-03-20T01:15:00.000000Z",
                actor: "county-office-130426-li",
                role: "county_office",
                rpc: "/fangpin.v1.PayoutService/FileClaim",
                object: "130426/claim/0195b8d2-7c1e-7000-8000-000000000001",
                before: r#"{"state":"publicity_passed"}"#,
                after: r#"{"state":"filed"}"#,
                request_id: "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
            },
            AuditFields {
                at: "2026-03-20T02:40:12.345678Z",
                actor: "中国人寿-王强",
                role: "surveyor",
                rpc: "/fangpin.v1.PayoutService/PayClaim",
                object: "130426/claim/0195b8d2-7c1e-7000-8000-000000000001",
                before: r#"{"state":"filed"}"#,
                after: r#"{"state":"paid","amount_fen":1995000}"#,
                request_id: "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3",
            },
        ])
    }

    /// The example as JSON lines, the input of the doc's Python verifier.
    fn example_jsonl() -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        example()
            .iter()
            .map(|e| {
                format!(
                    "{{\"seq\": {}, \"at\": {}, \"actor\": {}, \"role\": {}, \"rpc\": {}, \
                     \"object\": {}, \"before\": {}, \"after\": {}, \"request_id\": {}, \
                     \"prev_hash\": \"{}\", \"hash\": \"{}\"}}\n",
                    e.seq,
                    q(&e.at),
                    q(&e.actor),
                    q(&e.role),
                    q(&e.rpc),
                    q(&e.object),
                    q(&e.before),
                    q(&e.after),
                    q(&e.request_id),
                    hex(&e.prev_hash),
                    hex(&e.hash),
                )
            })
            .collect()
    }

    #[test]
    fn the_documented_example_is_what_we_compute() {
        let entries = example();
        // Fixed vectors: if these change, the format changed, and every stored
        // chain with it. Bump DOMAIN_TAG instead.
        assert_eq!(
            hex(&entries[0].hash),
            "1ff4bab32a0007034dd4e9876c4c53929ebd6a31ae8bc1322fad369323c0c8a8"
        );
        assert_eq!(
            hex(&entries[1].hash),
            "b174f0b7f28bffc5b6b6123f536745a215b963c9cb7ef924ba5ebfbb77ccdb4f"
        );
        assert_eq!(verify(&entries), Ok(2));
        let doc = include_str!("../../../docs/audit-log.md");
        let lines = example_jsonl();
        assert!(
            doc.contains(&lines),
            "docs/audit-log.md is out of date; its example should read:\n{lines}"
        );
    }

    #[test]
    fn the_encoding_is_as_documented() {
        // Rebuild the hashed bytes by hand for one entry and compare.
        let e = &example()[1];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"fangpin-audit-v1");
        bytes.extend_from_slice(&2u64.to_be_bytes());
        bytes.extend_from_slice(&e.prev_hash);
        for f in [
            &e.at,
            &e.actor,
            &e.role,
            &e.rpc,
            &e.object,
            &e.before,
            &e.after,
            &e.request_id,
        ] {
            bytes.extend_from_slice(&(f.len() as u64).to_be_bytes());
            bytes.extend_from_slice(f.as_bytes());
        }
        let direct: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(direct, e.hash);
        // The actor is 7 characters but 19 UTF-8 bytes: lengths are in bytes.
        assert_eq!(e.actor.chars().count(), 7);
        assert_eq!(e.actor.len(), 19);
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        let a = AuditFields {
            at: "t",
            actor: "ab",
            role: "c",
            rpc: "",
            object: "",
            before: "",
            after: "",
            request_id: "",
        };
        let b = AuditFields {
            actor: "a",
            role: "bc",
            ..a
        };
        assert_ne!(
            chain_hash(&GENESIS_HASH, 1, &a),
            chain_hash(&GENESIS_HASH, 1, &b)
        );
    }

    #[test]
    fn an_empty_log_verifies_and_the_first_entry_links_to_genesis() {
        assert_eq!(verify(Vec::<AuditEntry>::new()), Ok(0));
        let entries = example();
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
    }

    #[test]
    fn a_rewritten_entry_breaks_the_next_link() {
        // Edit entry 1 and recompute its hash, as someone with database access
        // but no way to rewrite the rest might: entry 2 no longer links.
        let mut entries = example();
        entries[0].after = r#"{"state":"rejected"}"#.to_owned();
        entries[0].hash = entries[0].computed_hash();
        assert_eq!(
            verify(&entries),
            Err(ChainBreak {
                seq: 2,
                last_good: 1,
                kind: BreakKind::BadLink
            })
        );
    }

    #[test]
    fn verification_resumes_from_an_anchor_and_checks_the_recorded_head() {
        let entries = example();
        let first = verify_from(ChainHead::GENESIS, &entries[..1]).unwrap();
        let anchor = first.head();
        let rest = verify_from(anchor, &entries[1..]).unwrap();
        assert_eq!(rest.checked(), 1);
        let recorded = entries[1].head();
        assert_eq!(rest.clone().finish_at(&recorded), Ok(1));

        // Dropping the newest entry leaves a valid chain; only the head shows it.
        let truncated = verify_from(ChainHead::GENESIS, &entries[..1]).unwrap();
        assert_eq!(
            truncated.finish_at(&recorded),
            Err(ChainBreak {
                seq: 2,
                last_good: 1,
                kind: BreakKind::HeadMismatch
            })
        );
    }

    #[test]
    fn format_at_is_fixed_width_utc() {
        use chrono::TimeZone;
        let t = chrono::Utc.with_ymd_and_hms(2026, 3, 20, 1, 15, 0).unwrap();
        assert_eq!(format_at(t), "2026-03-20T01:15:00.000000Z");
    }

    // ---- Properties ----------------------------------------------------------

    /// Short texts mixing ASCII, JSON punctuation and Chinese.
    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9{}\":,县防贫办保险 -]{0,12}"
    }

    fn chain() -> impl Strategy<Value = Vec<AuditEntry>> {
        prop::collection::vec(prop::collection::vec(text(), 8), 1..8).prop_map(|rows| {
            let fields: Vec<AuditFields<'_>> = rows
                .iter()
                .map(|r| AuditFields {
                    at: &r[0],
                    actor: &r[1],
                    role: &r[2],
                    rpc: &r[3],
                    object: &r[4],
                    before: &r[5],
                    after: &r[6],
                    request_id: &r[7],
                })
                .collect();
            build(&fields)
        })
    }

    /// Flips bits of one byte of field `field` (0..11) of `entry`; false if the
    /// field is empty or the flip would not be UTF-8. For text, the mask keeps
    /// an ASCII byte ASCII and a continuation byte a continuation byte, so
    /// nearly every flip stays valid and few cases are thrown away.
    fn flip(entry: &mut AuditEntry, field: usize, at: usize, mask: u8) -> bool {
        let text = match field {
            0 => {
                let mut b = entry.seq.to_be_bytes();
                b[at % 8] ^= mask;
                entry.seq = u64::from_be_bytes(b);
                return true;
            }
            1 => {
                entry.prev_hash[at % 32] ^= mask;
                return true;
            }
            2 => {
                entry.hash[at % 32] ^= mask;
                return true;
            }
            3 => &mut entry.at,
            4 => &mut entry.actor,
            5 => &mut entry.role,
            6 => &mut entry.rpc,
            7 => &mut entry.object,
            8 => &mut entry.before,
            9 => &mut entry.after,
            _ => &mut entry.request_id,
        };
        if text.is_empty() {
            return false;
        }
        let mut bytes = text.clone().into_bytes();
        let i = at % bytes.len();
        let keep_valid = match bytes[i] {
            0x00..=0x7f => 0x7f,
            0x80..=0xbf => 0x3f,
            _ => 0xff,
        };
        if mask & keep_valid == 0 {
            return false;
        }
        bytes[i] ^= mask & keep_valid;
        match String::from_utf8(bytes) {
            Ok(changed) => {
                *text = changed;
                true
            }
            Err(_) => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_024))]

        #[test]
        fn any_single_byte_change_is_caught_at_that_entry(
            mut entries in chain(),
            which in any::<prop::sample::Index>(),
            field in 0usize..11,
            at in any::<usize>(),
            mask in 1u8..=255,
        ) {
            let k = which.index(entries.len());
            prop_assume!(flip(&mut entries[k], field, at, mask));
            let seq = entries[k].seq;
            prop_assert_eq!(
                verify(&entries),
                Err(ChainBreak { seq, last_good: k as u64, kind: BreakKind::BadHash })
            );
        }

        #[test]
        fn deleting_or_reordering_is_caught(
            mut entries in chain(),
            a in any::<prop::sample::Index>(),
            b in any::<prop::sample::Index>(),
            delete in any::<bool>(),
        ) {
            let i = a.index(entries.len());
            let j = b.index(entries.len());
            let recorded = entries.last().unwrap().head();
            if delete {
                entries.remove(i);
                let result = verify_from(ChainHead::GENESIS, &entries)
                    .and_then(|v| v.finish_at(&recorded));
                if i < entries.len() {
                    // The entry after the hole stands where `i + 1` should be.
                    prop_assert_eq!(
                        result,
                        Err(ChainBreak { seq: i as u64 + 2, last_good: i as u64, kind: BreakKind::Gap })
                    );
                } else {
                    // The newest entry went: only the recorded head tells.
                    prop_assert_eq!(result.map_err(|e| e.kind), Err(BreakKind::HeadMismatch));
                }
            } else {
                prop_assume!(i != j);
                entries.swap(i, j);
                let first = i.min(j);
                prop_assert_eq!(
                    verify(&entries),
                    Err(ChainBreak {
                        seq: entries[first].seq,
                        last_good: first as u64,
                        kind: BreakKind::Gap
                    })
                );
            }
        }
    }
}
