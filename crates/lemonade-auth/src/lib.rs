//! Checking a bearer token without telling an attacker how close a guess came.
//!
//! Used for the public API's access token (`lemonade-api`) and for the cluster token of the
//! internal calls (`lemonade-cluster`'s server): the one place a presented secret is compared
//! with the expected one. A crate of its own so that the services need not depend on the
//! public HTTP API for it; it is pure (no I/O), over bytes, with no HTTP types.

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

/// Whether an `Authorization` header value carries the bearer token `expected` (see
/// [`bearer_token`]). A missing header, another scheme or bytes that are not the token are all
/// a plain `false`.
pub fn bearer_matches(header: Option<&[u8]>, expected: &str) -> bool {
    match header.and_then(bearer_token) {
        Some(presented) => token_matches(presented, expected.as_bytes()),
        None => false,
    }
}

/// The token of an `Authorization: Bearer <token>` header value: the scheme in any case
/// (RFC 7235 §2.1: "case-insensitive"), then one or more spaces (RFC 6750 §2.1: `"Bearer" 1*SP
/// b64token`). `None` for another scheme or no token. The token is returned as sent; whether
/// it is the right one is [`token_matches`]'s to say.
pub fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"Bearer";
    let (scheme, rest) = header.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Why `token` cannot be a bearer token as given, if it cannot: it must be an RFC 6750
/// `b64token` (letters, digits and `-._~+/`, then any `=` at the end), the characters a
/// client can send in an `Authorization: Bearer` header unchanged. Anything else (a space,
/// which HTTP strips from the end of a header, a quote, a non-ASCII letter) would make every
/// request carrying it fail. The error says which character, at which position (from 1).
pub fn check_bearer_token(token: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let padding_from = token.trim_end_matches('=').len();
    match token
        .char_indices()
        .find(|&(i, c)| !(allowed(c) || (c == '=' && i >= padding_from)))
    {
        None if padding_from == 0 => Err("it has no characters but '='".to_owned()),
        None => Ok(()),
        Some((i, c)) => Err(format!(
            "it holds {c:?} at position {}; a bearer token may hold only letters, digits and - . _ ~ + / (then = at its end, RFC 6750)",
            token[..i].chars().count() + 1
        )),
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
    fn a_bearer_header_must_name_the_scheme_in_any_case_and_the_exact_token() {
        let token = "s3cret-token-of-16+";
        for right in [
            "Bearer s3cret-token-of-16+",
            "bearer s3cret-token-of-16+",
            "BEARER s3cret-token-of-16+",
            "bEaReR s3cret-token-of-16+",
            "Bearer  s3cret-token-of-16+",
            "Bearer s3cret-token-of-16+ ",
        ] {
            assert!(bearer_matches(Some(right.as_bytes()), token), "{right:?}");
        }
        assert!(!bearer_matches(None, token));
        for wrong in [
            "s3cret-token-of-16+",
            "Basic s3cret-token-of-16+",
            "Bearers3cret-token-of-16+",
            "Bearer s3cret-token-of-16",
            "Bearer S3cret-token-of-16+",
            "Bearer ",
            "Bearer",
            "",
        ] {
            assert!(!bearer_matches(Some(wrong.as_bytes()), token), "{wrong:?}");
        }
    }

    #[test]
    fn a_token_that_a_bearer_header_cannot_carry_as_given_is_refused_naming_the_character() {
        for good in ["abcdefabcdefabcdef", "a-b.c_d~e+f/g", "YWJjZGVm==", "0123456789abcdef"] {
            assert_eq!(check_bearer_token(good), Ok(()), "{good:?}");
        }
        for (bad, shown) in [
            ("abcdefabcdefabcdef  ", "' ' at position 19"),
            (" abcdefabcdefabcdef", "' ' at position 1"),
            ("abc def", "' ' at position 4"),
            ("abc\tdef", "'\\t' at position 4"),
            ("abcdéf", "'é' at position 5"),
            ("abc\"def", "'\"' at position 4"),
            ("ab=cd", "'=' at position 3"),
            ("abc,def", "',' at position 4"),
            ("====", "no characters but '='"),
        ] {
            let e = check_bearer_token(bad).expect_err(bad);
            assert!(e.contains(shown), "{bad:?}: {e}");
        }
    }
}
