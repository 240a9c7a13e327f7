//! Bearer-token authentication of the API.
//!
//! - With `--api-token` (or `PROOFLINE_API_TOKEN`), every `/v1/...` request and
//!   `/metrics` need `Authorization: Bearer TOKEN`; the comparison takes the same time
//!   whatever the bytes (`subtle`), and the token never appears in logs, errors or
//!   `--help`. `/livez`, `/readyz` and `/openapi.json` stay open (probes, clients).
//! - Without a token the API is open, and the service refuses to listen on anything
//!   but a loopback address (exit 2): an open prover on a network is an accident.

use std::net::SocketAddr;

use subtle::ConstantTimeEq;

/// The API token; its `Debug` never shows it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A usable token: 16 to 1024 visible ASCII characters (what fits in a header).
    pub fn new(text: String) -> Result<Self, String> {
        if !(16..=1024).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("--api-token must be 16 to 1024 visible ASCII characters (no spaces); \
                 e.g. `openssl rand -hex 32`"
                .into());
        }
        Ok(Self(text))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some(presented) = header.and_then(bearer) else { return false };
        presented.ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The credentials of `Bearer CREDENTIALS` (the scheme is case-insensitive).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

/// Refuse to serve an open API beyond this machine.
pub fn check_exposure(listen: SocketAddr, has_token: bool) -> Result<(), String> {
    if has_token || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen} without an API token: anyone who can reach it could submit \
         and delete jobs. Set --api-token (or PROOFLINE_API_TOKEN), or listen on 127.0.0.1"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let t = Token::new("s3cret-token-0123456789".into()).unwrap();
        assert!(t.accepts(Some(b"Bearer s3cret-token-0123456789")));
        assert!(t.accepts(Some(b"bearer s3cret-token-0123456789 ")));
        for bad in [
            &b"Bearer s3cret-token-012345678"[..],
            b"Bearer s3cret-token-01234567890",
            b"Basic s3cret-token-0123456789",
            b"s3cret-token-0123456789",
            b"Bearer ",
            b"",
        ] {
            assert!(!t.accepts(Some(bad)), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!t.accepts(None));
    }

    #[test]
    fn tokens_are_long_printable_and_never_shown() {
        assert!(Token::new("short".into()).is_err());
        assert!(Token::new("has a space in it, 16+".into()).is_err());
        let t = Token::new("abcdefghijklmnopqrstuvwxyz".into()).unwrap();
        assert!(!format!("{t:?}").contains("abcdef"));
    }

    #[test]
    fn an_open_api_is_for_loopback_only() {
        assert!(check_exposure("127.0.0.1:8000".parse().unwrap(), false).is_ok());
        assert!(check_exposure("[::1]:8000".parse().unwrap(), false).is_ok());
        let err = check_exposure("0.0.0.0:8000".parse().unwrap(), false).unwrap_err();
        assert!(err.contains("--api-token"), "{err}");
        assert!(check_exposure("10.0.0.5:8000".parse().unwrap(), false).is_err());
        assert!(check_exposure("0.0.0.0:8000".parse().unwrap(), true).is_ok());
    }
}
