//! Evidence files (receipts, hospital bills, photos of the home): what a
//! file is, judged from its bytes, and the limits on it. The server hashes
//! and stores; this says what is acceptable.

use thiserror::Error;

/// The largest evidence file: a scanned bill or a phone photo, with room.
pub const MAX_EVIDENCE_BYTES: u64 = 32 * 1024 * 1024;

/// The most files one claim keeps.
pub const MAX_EVIDENCE_PER_CLAIM: u64 = 100;

/// The types accepted, by their signature bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    Jpeg,
    Png,
    Pdf,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpeg",
            MediaType::Png => "png",
            MediaType::Pdf => "pdf",
        }
    }

    pub fn parse(text: &str) -> Option<MediaType> {
        [MediaType::Jpeg, MediaType::Png, MediaType::Pdf]
            .into_iter()
            .find(|m| m.as_str() == text)
    }

    /// The Content-Type a download is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// What the file's own first bytes say it is: JPEG starts FF D8 FF
    /// (JFIF/EXIF SOI marker), PNG with its 8-byte signature, PDF with
    /// "%PDF-". Anything else is refused, whatever its name.
    pub fn sniff(head: &[u8]) -> Option<MediaType> {
        const PNG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(MediaType::Jpeg)
        } else if head.starts_with(&PNG) {
            Some(MediaType::Png)
        } else if head.starts_with(b"%PDF-") {
            Some(MediaType::Pdf)
        } else {
            None
        }
    }

    /// The type a file name's extension claims (case-insensitive).
    pub fn of_name(name: &str) -> Option<MediaType> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" => Some(MediaType::Jpeg),
            "png" => Some(MediaType::Png),
            "pdf" => Some(MediaType::Pdf),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EvidenceError {
    #[error("the file's bytes are not JPEG, PNG or PDF")]
    UnknownBytes,
    #[error("the name says {named} but the bytes are {found}")]
    NameDisagrees {
        named: &'static str,
        found: &'static str,
    },
    #[error("the name {0:?} has no .jpg, .jpeg, .png or .pdf extension")]
    UnknownName(String),
}

/// The type of a file named `name` whose bytes begin with `head`: the bytes
/// decide, and the name must agree with them.
pub fn media_type(name: &str, head: &[u8]) -> Result<MediaType, EvidenceError> {
    let found = MediaType::sniff(head).ok_or(EvidenceError::UnknownBytes)?;
    let named = MediaType::of_name(name).ok_or_else(|| EvidenceError::UnknownName(name.into()))?;
    if named != found {
        return Err(EvidenceError::NameDisagrees {
            named: named.as_str(),
            found: found.as_str(),
        });
    }
    Ok(found)
}

/// A SHA-256 as 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0];

    #[test]
    fn the_bytes_decide_and_the_name_must_agree() {
        assert_eq!(media_type("发票.JPG", JPEG), Ok(MediaType::Jpeg));
        assert_eq!(media_type("a.png", PNG), Ok(MediaType::Png));
        assert_eq!(media_type("bill.pdf", b"%PDF-1.7\n"), Ok(MediaType::Pdf));
        assert_eq!(
            media_type("bill.pdf", PNG),
            Err(EvidenceError::NameDisagrees {
                named: "pdf",
                found: "png"
            })
        );
        assert_eq!(
            media_type("a.jpg", b"GIF89a"),
            Err(EvidenceError::UnknownBytes)
        );
        assert_eq!(media_type("a.jpg", &[]), Err(EvidenceError::UnknownBytes));
        assert!(matches!(
            media_type("photo", JPEG),
            Err(EvidenceError::UnknownName(_))
        ));
        assert!(matches!(
            media_type("a.gif", JPEG),
            Err(EvidenceError::UnknownName(_))
        ));
    }

    #[test]
    fn hashes_are_64_lowercase_hex_digits() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(31)));
        assert!(!is_sha256_hex(&"zz".repeat(32)));
    }
}
