use std::fmt;

use crate::rules;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::NameError;

/// Bytes a libsodium sealed box adds to its plaintext (ephemeral public key 32 + MAC 16).
pub const SEAL_OVERHEAD: usize = 48;
/// The GitHub Service refuses blobs longer than this many base64 characters. That is 49 152 bytes
/// decoded, tighter than GitHub's 48 KiB value limit plus the seal, so it is the limit enforced.
pub const MAX_ENCODED_CHARS: usize = 65_536;

/// A libsodium sealed box, base64-encoded, that only the GitHub Service can open.
///
/// It is a bearer credential: whoever holds it can replay it to the GitHub Service. So its `Debug`
/// and `Display` print a redaction, and the raw text is reached only through
/// [`SealedBlob::expose`] (for the upstream request body) and through the `Serialize` of
/// [`SealedPat`] and [`SealedValue`], which exists for clients writing a request body: the service
/// never serializes a request.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob(String);

impl SealedBlob {
    /// The base64 text, for the upstream request body only. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn parse(
        value: String,
        min_decoded: usize,
        what: &'static str,
    ) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError(match what {
                "pat" => rules::PAT_EMPTY,
                _ => rules::VALUE_EMPTY,
            }));
        }
        if value.len() > MAX_ENCODED_CHARS {
            return Err(NameError(rules::BLOB_LONG));
        }
        if value.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(NameError(rules::BLOB_WHITESPACE));
        }
        let decoded_len = match STANDARD.decode(value.as_bytes()) {
            Ok(bytes) => bytes.len(),
            Err(_) if value.bytes().any(|b| b == b'-' || b == b'_') => {
                return Err(NameError(rules::BLOB_URL_SAFE));
            }
            Err(_) => {
                return Err(NameError(rules::BLOB_ALPHABET));
            }
        };
        if decoded_len < min_decoded {
            return Err(NameError(match what {
                "pat" => rules::PAT_SHORT,
                _ => rules::VALUE_SHORT,
            }));
        }
        Ok(Self(value))
    }
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedBlob(<redacted>)")
    }
}

impl fmt::Display for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// The schemas' patterns are standard base64 with padding as the decoder accepts it: the unused
// bits of a padded last group are zero (`xQ==`, `xxE=`; never `xB==`), and 16 groups of four
// characters are 48 bytes.
macro_rules! sealed_kind {
    ($(#[$doc:meta])* $name:ident, $min:expr, $what:literal, $schema_doc:literal, $pattern:expr, $min_chars:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(SealedBlob);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.0.expose())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_encoding("base64")
                    .pattern(Some($pattern))
                    .min_length(Some($min_chars))
                    .max_length(Some(MAX_ENCODED_CHARS))
                    .description(Some(concat!($schema_doc, " Seal with the key of GET /public-keys/github (libsodium sealed box), then standard base64 with padding. Passed through unchanged: this service cannot open it.")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub fn blob(&self) -> &SealedBlob {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                SealedBlob::parse(value, $min, $what).map(Self)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

sealed_kind!(
    /// A sealed GitHub PAT: the plaintext is never empty, so at least 49 bytes decoded.
    SealedPat,
    SEAL_OVERHEAD + 1,
    "pat",
    "A GitHub PAT, sealed.",
    // At least 49 bytes: 16 groups of four characters (48 bytes), then at least one more byte.
    "^(?:[A-Za-z0-9+/]{4}){16}(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
    68
);
sealed_kind!(
    /// A sealed secret value: at least the 48 bytes of sealed-box overhead.
    SealedValue,
    SEAL_OVERHEAD,
    "value",
    "A secret value, sealed.",
    // At least 48 bytes: 16 groups of four characters.
    "^(?:[A-Za-z0-9+/]{4}){16}(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$",
    64
);

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(len: usize) -> String {
        STANDARD.encode(vec![0xfbu8; len])
    }

    #[test]
    fn accepts_standard_padded_base64_of_sealed_box_sizes() {
        assert!(SealedPat::try_from(b64(49)).is_ok());
        assert!(SealedValue::try_from(b64(48)).is_ok());
        assert!(SealedValue::try_from(b64(MAX_ENCODED_CHARS / 4 * 3)).is_ok());
    }

    #[test]
    fn rejects_a_pat_that_could_only_seal_an_empty_string() {
        assert!(SealedPat::try_from(b64(48)).is_err());
    }

    #[test]
    fn rejects_url_safe_base64_with_a_hint() {
        let url_safe = b64(60).replace('+', "-").replace('/', "_");
        let err = SealedPat::try_from(url_safe).unwrap_err().to_string();
        assert!(err.contains("URL-safe"), "{err}");
    }

    #[test]
    fn rejects_missing_padding_whitespace_and_oversize_blobs() {
        let unpadded = b64(50).trim_end_matches('=').to_owned();
        assert!(SealedValue::try_from(unpadded).is_err());
        let wrapped = format!("{}\n{}", &b64(60)[..40], &b64(60)[40..]);
        assert!(SealedValue::try_from(wrapped).is_err());
        assert!(SealedValue::try_from(b64(MAX_ENCODED_CHARS)).is_err());
        assert!(SealedValue::try_from(String::new()).is_err());
    }

    #[test]
    fn debug_and_display_never_show_the_blob() {
        let text = b64(60);
        let pat = SealedPat::try_from(text.clone()).unwrap();
        for shown in [
            format!("{pat:?}"),
            format!("{:?}", pat.blob()),
            pat.blob().to_string(),
        ] {
            assert!(!shown.contains(&text[..20]), "{shown}");
            assert!(shown.contains("redacted"));
        }
        assert_eq!(pat.blob().expose(), text);
    }
}
