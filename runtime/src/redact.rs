//! Credentials out of URLs before they are shown: one rule for every URL the runtime
//! logs or prints (AMQP URIs, S3 endpoints).

/// `url` without the `user:password@` of its authority, and whether it had one.
///
/// Everything before the *last* `@` is userinfo: a password may hold `/`, `?`, `#`, `:`
/// or `@` unescaped, so the authority's end cannot be trusted to find it. A URL whose
/// path or query holds an `@` is shown from that `@` on: over-redacting beats leaking.
pub fn without_userinfo(url: &str) -> (String, bool) {
    let Some((before, after)) = url.rsplit_once('@') else {
        return (url.to_owned(), false);
    };
    match before.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => (format!("{scheme}://{after}"), true),
        _ => (after.to_owned(), true),
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}
