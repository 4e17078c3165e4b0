//! Local sealing: libsodium `crypto_box_seal` (PyNaCl `SealedBox`) to the GitHub Service's
//! X25519 public key, standard base64 with padding. Only the GitHub Service can open the result.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use zeroize::Zeroizing;

/// The GitHub Service's public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(crypto_box::PublicKey);

/// Why a public key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the public key must be 64 hexadecimal characters (32 bytes), got {0} characters")]
pub struct BadPublicKey(pub usize);

impl PublicKey {
    /// Parses 64 hex characters, in either case.
    pub fn from_hex(hex_key: &str) -> Result<Self, BadPublicKey> {
        let hex_key = hex_key.trim();
        let bytes: [u8; 32] = hex::decode(hex_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(BadPublicKey(hex_key.chars().count()))?;
        Ok(Self(crypto_box::PublicKey::from_bytes(bytes)))
    }

    /// Lowercase hex, as the GitHub Service publishes it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The first 8 hex characters: enough for a person to tell two keys apart.
    pub fn fingerprint(&self) -> String {
        self.to_hex()[..8].to_owned()
    }

    /// Seals `plaintext` to this key: ephemeral key (32) ‖ MAC (16) ‖ ciphertext, base64.
    pub fn seal(&self, plaintext: &[u8]) -> Sealed {
        let sealed = self
            .0
            .seal(&mut OsRng, plaintext)
            .expect("sealing to a 32-byte X25519 key cannot fail");
        Sealed(STANDARD.encode(sealed))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// A sealed blob in standard base64. It is a bearer credential (anyone holding a sealed PAT
/// can replay it to the GitHub Service), so `Debug` prints a redaction.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps a blob sealed elsewhere (e.g. read from a workflow file).
    pub fn from_base64(blob: String) -> Self {
        Self(blob)
    }

    /// The base64 text, for a request body or for `seal`'s output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(<{} base64 characters, redacted>)", self.0.len())
    }
}

impl serde::Serialize for Sealed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A plaintext credential or secret value, wiped from memory when dropped; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<String>);

impl Plaintext {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn seal_to(&self, key: &PublicKey) -> Sealed {
        key.seal(self.0.as_bytes())
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plaintext(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_parses_from_hex_in_either_case_and_rejects_other_lengths() {
        let hex_key = "AB".repeat(32);
        assert_eq!(
            PublicKey::from_hex(&hex_key).unwrap().to_hex(),
            "ab".repeat(32)
        );
        assert_eq!(PublicKey::from_hex("abcd"), Err(BadPublicKey(4)));
        assert!(PublicKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_sealed_blob_is_standard_base64_of_the_plaintext_plus_48_bytes() {
        let key = PublicKey::from_hex(&"11".repeat(32)).unwrap();
        let sealed = key.seal(b"hello");
        let raw = STANDARD.decode(sealed.expose()).unwrap();
        assert_eq!(raw.len(), 5 + 48);
        assert_ne!(
            key.seal(b"hello"),
            sealed,
            "every seal uses a fresh ephemeral key"
        );
    }

    #[test]
    fn debug_output_never_shows_a_blob_or_a_plaintext() {
        let key = PublicKey::from_hex(&"11".repeat(32)).unwrap();
        let plain = Plaintext::new("hunter2-secret".into());
        let sealed = plain.seal_to(&key);
        let shown = format!("{plain:?} {sealed:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains(&sealed.expose()[..12]));
    }
}
