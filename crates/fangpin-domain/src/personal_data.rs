//! Sealing personal data at rest: ID numbers and bank accounts are stored
//! only encrypted (XChaCha20-Poly1305), each bound to its column and row, and
//! ID numbers are found again through a keyed hash (HMAC-SHA256) instead of
//! their digits. docs/personal-data.md has the formats.
//!
//! Pure functions: the caller brings the key bytes (read from the key file
//! by the server) and a fresh random nonce for every seal, so this module
//! does no I/O and reads no randomness, and every output here is a function
//! of its inputs, which is what the tests below rely on.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2_next::Sha256;

use crate::identity::ResidentId;

/// A personal-data key is 32 random bytes (256 bits), written in the key file
/// as 64 hex digits.
pub const KEY_BYTES: usize = 32;
/// XChaCha20's nonce: 192 bits, so nonces drawn at random never repeat in
/// practice (a county seals a few million values over its lifetime; random
/// 96-bit nonces would already be safe, 192 leaves no doubt).
pub const NONCE_BYTES: usize = 24;
/// Poly1305's tag.
pub const TAG_BYTES: usize = 16;
/// The first byte of every sealed value: the format and algorithm. A future
/// key rotation or algorithm change adds a version; `open` refuses unknown ones.
pub const SEALED_VERSION: u8 = 1;
/// The lookup hash and the key check value: HMAC-SHA256 / HKDF-SHA256 output.
pub const HASH_BYTES: usize = 32;
/// Longest plaintext sealed: a bank account has at most 32 digits and an ID
/// number 18 characters. Anything longer is a bug in the caller.
pub const MAX_PLAINTEXT_BYTES: usize = 64;
/// Longest sealed value: what the schema's CHECKs allow.
pub const MAX_SEALED_BYTES: usize = 1 + NONCE_BYTES + MAX_PLAINTEXT_BYTES + TAG_BYTES;

/// HKDF's salt: fixed and public, it only separates fangpin's use of the
/// key material from any other (RFC 5869 §3.1 allows a constant salt).
const HKDF_SALT: &[u8] = b"fangpin personal data";
/// One label per subkey, so the sealing key, the lookup key and the key check
/// are independent even though one key file yields all three.
const INFO_SEAL: &[u8] = b"fangpin/v1/seal xchacha20poly1305";
const INFO_LOOKUP: &[u8] = b"fangpin/v1/lookup hmac-sha256";
const INFO_CHECK: &[u8] = b"fangpin/v1/key check";

/// Where a sealed value lives. Its label goes into the associated data, so a
/// value copied into another column fails to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// `households.head_id_sealed`; the row is the household id.
    HouseholdHeadId,
    /// `households.bank_account_sealed`; the row is the household id.
    HouseholdBankAccount,
    /// `persons.id_sealed`; the row is the policy year and household id.
    PersonId,
}

impl Column {
    pub fn label(self) -> &'static str {
        match self {
            Column::HouseholdHeadId => "households.head_id_number",
            Column::HouseholdBankAccount => "households.bank_account",
            Column::PersonId => "persons.id_number",
        }
    }
}

/// The associated data of a sealed value: version, column label and row,
/// separated by a byte neither labels nor row ids (UUIDs, years) contain, so
/// no two (column, row) pairs encode alike.
fn associated_data(column: Column, row: &str) -> Vec<u8> {
    debug_assert!(!row.contains('\0'), "row ids are UUIDs and years");
    let mut aad = Vec::with_capacity(2 + column.label().len() + 1 + row.len());
    aad.push(SEALED_VERSION);
    aad.extend_from_slice(column.label().as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

/// The row part of a person's associated data.
pub fn person_row(policy_year: i32, household_id: &str) -> String {
    format!("{policy_year}/{household_id}")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a personal-data key is 64 hex digits (32 bytes); this one has {0} characters")]
    Length(usize),
    #[error("a personal-data key is hex digits only (0-9, a-f)")]
    NotHex,
}

/// Why a sealed value did not open. Deliberately says nothing about the
/// contents: a wrong key, a wrong row and a flipped bit look alike.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("sealed value of {0} bytes is too short or too long")]
    Length(usize),
    #[error("sealed value has unknown format version {0}")]
    Version(u8),
    #[error("sealed value does not open with this key for this column and row")]
    Unauthentic,
    #[error("sealed value opened to text that is not UTF-8")]
    NotText,
}

/// The three subkeys derived from one personal-data key. Never printed:
/// `Debug` shows only that a key is there.
#[derive(Clone)]
pub struct PersonalDataKey {
    seal: XChaCha20Poly1305,
    lookup: Hmac<Sha256>,
    check: [u8; HASH_BYTES],
}

impl fmt::Debug for PersonalDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalDataKey(..)")
    }
}

/// Two keys are the same key when their check values agree; the check value
/// is public (it is stored in the database), so comparing it leaks nothing.
impl PartialEq for PersonalDataKey {
    fn eq(&self, other: &Self) -> bool {
        self.check == other.check
    }
}
impl Eq for PersonalDataKey {}

impl PersonalDataKey {
    /// Derives the subkeys with HKDF-SHA256, one `info` label each.
    pub fn from_bytes(key: &[u8; KEY_BYTES]) -> PersonalDataKey {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), key);
        let mut seal = [0u8; KEY_BYTES];
        let mut lookup = [0u8; KEY_BYTES];
        let mut check = [0u8; HASH_BYTES];
        for (info, out) in [
            (INFO_SEAL, &mut seal),
            (INFO_LOOKUP, &mut lookup),
            (INFO_CHECK, &mut check),
        ] {
            hkdf.expand(info, out)
                .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
        }
        PersonalDataKey {
            seal: XChaCha20Poly1305::new(&seal.into()),
            lookup: Hmac::<Sha256>::new_from_slice(&lookup)
                .expect("HMAC takes a key of any length"),
            check,
        }
    }

    /// Parses a key file's contents: 64 hex digits, surrounding whitespace
    /// (a trailing newline) ignored. Upper or lower case.
    pub fn parse_hex(text: &str) -> Result<PersonalDataKey, KeyError> {
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 {
            return Err(KeyError::Length(text.chars().count()));
        }
        let mut key = [0u8; KEY_BYTES];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16).ok_or(KeyError::NotHex);
            let byte = digit(pair[0])? * 16 + digit(pair[1])?;
            key[i] = u8::try_from(byte).expect("two hex digits fit a byte");
        }
        Ok(PersonalDataKey::from_bytes(&key))
    }

    /// A value derived from the key that proves which key a database was
    /// sealed with, without revealing the key or the other subkeys.
    pub fn check_value(&self) -> [u8; HASH_BYTES] {
        self.check
    }

    /// Seals `plaintext` for `column` of `row`:
    /// version (1 byte) || nonce (24) || ciphertext || tag (16).
    ///
    /// `nonce` must be fresh random bytes for every call (the server draws
    /// them from the operating system); reusing one with the same key would
    /// reveal the XOR of two plaintexts.
    pub fn seal(
        &self,
        column: Column,
        row: &str,
        plaintext: &str,
        nonce: [u8; NONCE_BYTES],
    ) -> Vec<u8> {
        assert!(
            plaintext.len() <= MAX_PLAINTEXT_BYTES,
            "sealed values are ID numbers and bank accounts"
        );
        let aad = associated_data(column, row);
        let nonce_array = XNonce::from(nonce);
        let ciphertext = self
            .seal
            .encrypt(
                &nonce_array,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        debug_assert_eq!(sealed.len(), 1 + NONCE_BYTES + plaintext.len() + TAG_BYTES);
        sealed
    }

    /// Opens a value sealed by `seal` for the same column and row.
    pub fn open(&self, column: Column, row: &str, sealed: &[u8]) -> Result<String, OpenError> {
        if !(1 + NONCE_BYTES + TAG_BYTES..=MAX_SEALED_BYTES).contains(&sealed.len()) {
            return Err(OpenError::Length(sealed.len()));
        }
        if sealed[0] != SEALED_VERSION {
            return Err(OpenError::Version(sealed[0]));
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at NONCE_BYTES");
        let aad = associated_data(column, row);
        let plaintext = self
            .seal
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Unauthentic)?;
        String::from_utf8(plaintext).map_err(|_| OpenError::NotText)
    }

    /// The keyed hash that finds a person by ID number: HMAC-SHA256 under the
    /// lookup subkey of the number's canonical form (upper-case X). Without
    /// the key, the hash cannot be computed, so the 10^10-odd valid ID
    /// numbers cannot be enumerated against a stolen table.
    pub fn lookup_hash(&self, id: &ResidentId) -> [u8; HASH_BYTES] {
        let mut mac = self.lookup.clone();
        mac.update(id.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A bank account as lists and tables show it: every digit but the last four
/// replaced by `*`, the length kept (the household recognises its card by the
/// last four digits, as on a bank's own statements).
pub fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    let keep = chars.len().saturating_sub(4);
    let mut masked = "*".repeat(keep);
    masked.extend(&chars[keep..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: [u8; KEY_BYTES] = [7; KEY_BYTES];
    const KEY_B: [u8; KEY_BYTES] = [8; KEY_BYTES];
    const NONCE: [u8; NONCE_BYTES] = [1; NONCE_BYTES];
    const ID: &str = "11010519491231002X";
    const HOUSEHOLD: &str = "0190a1b2-0000-7000-8000-000000000001";

    fn key(bytes: [u8; KEY_BYTES]) -> PersonalDataKey {
        PersonalDataKey::from_bytes(&bytes)
    }

    #[test]
    fn a_sealed_value_opens_to_its_plaintext_and_never_contains_it() {
        let k = key(KEY_A);
        let sealed = k.seal(Column::HouseholdHeadId, HOUSEHOLD, ID, NONCE);
        assert_eq!(sealed.len(), 1 + NONCE_BYTES + ID.len() + TAG_BYTES);
        assert_eq!(sealed[0], SEALED_VERSION);
        assert!(!sealed.windows(ID.len()).any(|w| w == ID.as_bytes()));
        assert_eq!(
            k.open(Column::HouseholdHeadId, HOUSEHOLD, &sealed),
            Ok(ID.into())
        );
    }

    #[test]
    fn another_column_or_row_does_not_open() {
        let k = key(KEY_A);
        let sealed = k.seal(Column::HouseholdHeadId, HOUSEHOLD, ID, NONCE);
        assert_eq!(
            k.open(Column::PersonId, HOUSEHOLD, &sealed),
            Err(OpenError::Unauthentic)
        );
        assert_eq!(
            k.open(
                Column::HouseholdHeadId,
                "0190a1b2-0000-7000-8000-000000000002",
                &sealed
            ),
            Err(OpenError::Unauthentic)
        );
    }

    #[test]
    fn short_long_and_unknown_versions_are_refused() {
        let k = key(KEY_A);
        assert_eq!(
            k.open(Column::PersonId, "r", &[]),
            Err(OpenError::Length(0))
        );
        assert_eq!(
            k.open(Column::PersonId, "r", &[SEALED_VERSION; 40]),
            Err(OpenError::Length(40))
        );
        let mut sealed = k.seal(Column::PersonId, "r", ID, NONCE);
        sealed[0] = 2;
        assert_eq!(
            k.open(Column::PersonId, "r", &sealed),
            Err(OpenError::Version(2))
        );
        let too_long = vec![SEALED_VERSION; MAX_SEALED_BYTES + 1];
        assert!(matches!(
            k.open(Column::PersonId, "r", &too_long),
            Err(OpenError::Length(_))
        ));
    }

    #[test]
    fn key_files_are_64_hex_digits() {
        let hex = "07".repeat(KEY_BYTES);
        assert_eq!(
            PersonalDataKey::parse_hex(&format!(" {hex}\n")),
            Ok(key(KEY_A))
        );
        assert_eq!(
            PersonalDataKey::parse_hex(&hex.to_uppercase()),
            Ok(key(KEY_A))
        );
        assert_eq!(PersonalDataKey::parse_hex("abcd"), Err(KeyError::Length(4)));
        assert_eq!(
            PersonalDataKey::parse_hex(&"zz".repeat(KEY_BYTES)),
            Err(KeyError::NotHex)
        );
        // A multi-byte character must not be taken for two hex digits.
        assert!(PersonalDataKey::parse_hex(&format!("é{}", "0".repeat(62))).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        assert_eq!(format!("{:?}", key(KEY_A)), "PersonalDataKey(..)");
    }

    #[test]
    fn the_check_value_depends_on_the_key_and_differs_from_the_lookup_hash() {
        let (a, b) = (key(KEY_A), key(KEY_B));
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a.check_value(), key(KEY_A).check_value());
        let id = ResidentId::parse(ID).unwrap();
        assert_ne!(a.check_value(), a.lookup_hash(&id));
    }

    #[test]
    fn bank_accounts_keep_only_the_last_four_digits() {
        assert_eq!(mask_account("6228480012345678"), "************5678");
        assert_eq!(mask_account("123"), "123");
    }

    proptest! {
        #[test]
        fn round_trip(k in any::<[u8; 32]>(), nonce in any::<[u8; 24]>(), text in "[0-9X]{0,32}", row in "[0-9a-f-]{0,40}") {
            let k = key(k);
            let sealed = k.seal(Column::HouseholdBankAccount, &row, &text, nonce);
            prop_assert_eq!(k.open(Column::HouseholdBankAccount, &row, &sealed), Ok(text));
        }

        #[test]
        fn flipping_any_bit_is_detected(nonce in any::<[u8; 24]>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key(KEY_A);
            let mut sealed = k.seal(Column::PersonId, HOUSEHOLD, ID, nonce);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(k.open(Column::PersonId, HOUSEHOLD, &sealed).is_err());
        }

        #[test]
        fn another_key_does_not_open(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), nonce in any::<[u8; 24]>()) {
            prop_assume!(a != b);
            let sealed = key(a).seal(Column::PersonId, HOUSEHOLD, ID, nonce);
            prop_assert_eq!(key(b).open(Column::PersonId, HOUSEHOLD, &sealed), Err(OpenError::Unauthentic));
        }

        #[test]
        fn another_row_does_not_open(row in "[0-9a-f-]{1,40}", other in "[0-9a-f-]{1,40}", nonce in any::<[u8; 24]>()) {
            prop_assume!(row != other);
            let k = key(KEY_A);
            let sealed = k.seal(Column::PersonId, &row, ID, nonce);
            prop_assert_eq!(k.open(Column::PersonId, &other, &sealed), Err(OpenError::Unauthentic));
        }

        #[test]
        fn lookup_hash_is_stable_and_keyed(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), sequence in 0u32..999) {
            let id = ResidentId::from_first17(&format!("13042619700101{sequence:03}")).unwrap();
            let other = ResidentId::from_first17(&format!("13042619700101{:03}", sequence + 1)).unwrap();
            let ka = key(a);
            prop_assert_eq!(ka.lookup_hash(&id), key(a).lookup_hash(&id));
            prop_assert_ne!(ka.lookup_hash(&id), ka.lookup_hash(&other));
            if a != b {
                prop_assert_ne!(ka.lookup_hash(&id), key(b).lookup_hash(&id));
            }
        }
    }
}
