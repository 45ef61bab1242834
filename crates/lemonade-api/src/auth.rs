//! Checking a bearer token without telling an attacker how close a guess came.
//!
//! Used for the public API's access token and for the cluster token of the internal calls:
//! the one place a presented secret is compared with the expected one.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `presented` equals `expected`, in time that depends on neither's contents nor on
/// where they first differ. Both are hashed first (SHA-256), so the comparison always runs
/// over 32 bytes and does not even reveal the expected token's length; the hashes are then
/// compared with `subtle`, which the optimiser cannot turn into an early exit.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    presented.as_slice().ct_eq(expected.as_slice()).into()
}

/// Whether an `Authorization` header value is `Bearer <expected>`. A missing header, another
/// scheme or bytes that are not the token are all a plain `false`.
pub fn bearer_matches(header: Option<&[u8]>, expected: &str) -> bool {
    match header.and_then(|h| h.strip_prefix(b"Bearer ")) {
        Some(presented) => token_matches(presented, expected.as_bytes()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = "s3cret-token-of-16+";
        assert!(token_matches(token.as_bytes(), token.as_bytes()));
        for wrong in [
            "",
            "s3cret-token-of-16",
            "s3cret-token-of-16+ ",
            "S3cret-token-of-16+",
            "x",
        ] {
            assert!(!token_matches(wrong.as_bytes(), token.as_bytes()), "{wrong:?}");
        }
    }

    #[test]
    fn a_bearer_header_must_name_the_scheme_and_the_exact_token() {
        let token = "s3cret-token-of-16+";
        assert!(bearer_matches(Some(b"Bearer s3cret-token-of-16+"), token));
        assert!(!bearer_matches(None, token));
        assert!(!bearer_matches(Some(b"s3cret-token-of-16+"), token));
        assert!(!bearer_matches(Some(b"Basic s3cret-token-of-16+"), token));
        assert!(!bearer_matches(Some(b"Bearer  s3cret-token-of-16+"), token));
        assert!(!bearer_matches(Some(b"Bearer s3cret-token-of-16"), token));
    }
}
