//! The GitHub Service's X25519 key pair and its sealed-box input checks (contract §2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::SecretKey;
use crypto_box::aead::OsRng;

/// Sealed-box overhead: ephemeral public key (32) + MAC (16).
pub const SEAL_OVERHEAD: usize = 48;
/// The upstream's maximum length of a base64 blob, in characters.
pub const MAX_BLOB_CHARS: usize = 65_536;

/// An X25519 key pair, as the GitHub Service holds in `SERVICE__AUTH__{PUBLIC,PRIVATE}_KEY`.
#[derive(Clone)]
pub struct KeyPair {
    secret: SecretKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_hex())
            .finish_non_exhaustive()
    }
}

/// Why a blob could not be opened. The texts are the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// Not strict standard base64, or shorter than a sealed box, or too long: the upstream's input
    /// check (a framework 500 for `encrypted_pat`).
    Malformed(String),
    /// Well-formed but not sealed to this key, or corrupt.
    WrongKey,
    /// Opened, but the plaintext is not UTF-8.
    NotText,
}

impl KeyPair {
    pub fn generate() -> Self {
        Self {
            secret: SecretKey::generate(&mut OsRng),
        }
    }

    /// Builds a key pair from a 64-hex-character private key.
    pub fn from_private_hex(hex_key: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(hex_key.trim()).ok()?.try_into().ok()?;
        Some(Self {
            secret: SecretKey::from_bytes(bytes),
        })
    }

    /// The public key as the upstream publishes it: 64 lowercase hex characters.
    pub fn public_hex(&self) -> String {
        hex::encode(self.secret.public_key().as_bytes())
    }

    /// Seals `plaintext` to this key (libsodium `crypto_box_seal`), standard base64.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let sealed = self
            .secret
            .public_key()
            .seal(&mut OsRng, plaintext)
            .expect("sealing to a valid X25519 key cannot fail");
        STANDARD.encode(sealed)
    }

    /// Runs the upstream's input check, then opens the sealed box and decodes UTF-8.
    pub fn open(&self, blob: &str) -> Result<String, BlobError> {
        let raw = check_blob(blob)?;
        let plain = self.secret.unseal(&raw).map_err(|_| BlobError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| BlobError::NotText)
    }
}

/// The upstream's check before decrypting (contract §2): strict base64, decoded length ≥ 48,
/// at most 65 536 characters. The empty string passes.
pub fn check_blob(blob: &str) -> Result<Vec<u8>, BlobError> {
    if blob.len() > MAX_BLOB_CHARS {
        return Err(BlobError::Malformed(format!(
            "Invalid base64 encoded encrypted data: value exceeds maximum length of {MAX_BLOB_CHARS} characters (was {})",
            blob.len()
        )));
    }
    if blob.is_empty() {
        return Ok(Vec::new());
    }
    let raw = STANDARD.decode(blob).map_err(|_| {
        BlobError::Malformed(
            "Invalid base64 encoded encrypted data: Only base64 data is allowed".to_owned(),
        )
    })?;
    if raw.len() < SEAL_OVERHEAD {
        return Err(BlobError::Malformed(format!(
            "Invalid base64 encoded encrypted data: Encrypted data too short to be valid NaCl encryption: {} bytes",
            raw.len()
        )));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_not_with_another() {
        let keys = KeyPair::generate();
        let blob = keys.seal("hello".as_bytes());
        assert_eq!(keys.open(&blob).unwrap(), "hello");
        assert_eq!(KeyPair::generate().open(&blob), Err(BlobError::WrongKey));
    }

    #[test]
    fn the_input_check_rejects_url_safe_and_short_blobs_and_lets_the_empty_string_through() {
        assert!(matches!(check_blob("ab-_"), Err(BlobError::Malformed(_))));
        assert!(
            matches!(check_blob("Tm9uZQ=="), Err(BlobError::Malformed(m)) if m.ends_with("4 bytes"))
        );
        assert_eq!(check_blob(""), Ok(Vec::new()));
    }

    #[test]
    fn a_private_key_in_hex_round_trips_to_the_same_public_key() {
        let keys = KeyPair::generate();
        let again = KeyPair::from_private_hex(&hex::encode(keys.secret.to_bytes())).unwrap();
        assert_eq!(again.public_hex(), keys.public_hex());
        assert_eq!(again.public_hex().len(), 64);
    }
}
