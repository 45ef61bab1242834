//! A minimal HTTP/1.1 client on top of `hyper::client::conn::http1`: one keep-alive TCP
//! connection per [`Conn`], no pool, no per-request allocation beyond hyper's own.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Retries of one request after a transport-level failure (so at most 1 + 3 attempts).
pub(crate) const MAX_RETRIES: u32 = 3;

/// Most of an error (non-2xx) response body that is kept to find its `code`.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Most of a 2xx body kept when the caller wants it (the product list).
const OK_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub(crate) static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Why an attempt got no HTTP answer. These are the error codes of transport-level failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No whole answer within the request timeout.
    Timeout,
    /// Could not connect, or the connection broke before the answer was whole.
    Connect,
}

impl Failure {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
        }
    }
}

/// A whole HTTP answer: status and (possibly truncated, possibly discarded) body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Where the server is and what every request carries.
#[derive(Debug)]
pub(crate) struct Target {
    /// The URL as given, for messages and the report.
    pub url: String,
    host: String,
    port: u16,
    /// Path prefix from the URL, without a trailing slash ("" for the root).
    base_path: String,
    host_header: HeaderValue,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl Target {
    pub(crate) fn new(url: &str, token: Option<&str>, timeout: Duration) -> anyhow::Result<Self> {
        let url = url.trim();
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = with_scheme
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("--url {url:?}: scheme {other:?} is not supported; use a plain http:// URL"),
            None => bail!("--url {url:?} has no scheme"),
        }
        let authority = uri.authority().with_context(|| format!("--url {url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            bail!("--url {url:?} has no host");
        }
        let port = match authority.port() {
            None => 80,
            Some(p) => p.as_u16(),
        };
        if authority
            .as_str()
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.ends_with(']') && p.parse::<u16>().is_err())
        {
            bail!("--url {url:?} has a port that is not a number from 0 to 65535");
        }
        if uri.query().is_some() {
            bail!("--url {url:?} must not have a query string");
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let host_header = HeaderValue::from_str(authority.as_str()).context("--url host is not a valid Host header")?;
        let authorization = match token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .context("--token contains characters that cannot be sent in a header")?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Target {
            url: url.to_owned(),
            host,
            port,
            base_path,
            host_header,
            authorization,
            timeout,
        })
    }

    /// The timeout of one attempt.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The origin-form URI of `path` (which starts with '/') under the URL's base path.
    pub(crate) fn uri(&self, path: &str) -> anyhow::Result<Uri> {
        let full = format!("{}{}", self.base_path, path);
        full.parse()
            .with_context(|| format!("cannot build a request URI from {full:?}"))
    }

    /// Resolves the host and returns the first address that accepts a connection.
    pub(crate) async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host((&*self.host, self.port)))
                .await
                .map_err(|_| anyhow::anyhow!("resolving {:?} timed out", self.host))?
                .with_context(|| format!("cannot resolve {:?}", self.host))?
                .collect();
        let mut last_error = None;
        for addr in &addrs {
            match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => return Ok(*addr),
                Ok(Err(e)) => last_error = Some(anyhow::Error::new(e).context(format!("cannot connect to {addr}"))),
                Err(_) => last_error = Some(anyhow::anyhow!("connecting to {addr} timed out")),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{:?} resolves to no address", self.host)))
            .with_context(|| format!("no server reachable at {}", self.url))
    }

    /// A request with the headers every request carries. Cheap: the header values are shared.
    pub(crate) fn request(&self, method: Method, uri: Uri, body: Option<Bytes>) -> Request<Full<Bytes>> {
        let has_body = body.is_some();
        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host_header.clone());
        if has_body {
            headers.insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        }
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// One attempt within the request timeout: connects first when `conn` is empty. On a
    /// failure the connection is dropped (its state is unknown), so the next attempt
    /// reconnects.
    pub(crate) async fn attempt(
        &self,
        addr: SocketAddr,
        conn: &mut Option<Conn>,
        request: Request<Full<Bytes>>,
        keep_ok_body: bool,
    ) -> Result<Answer, Failure> {
        let exchange = async {
            let live = match conn {
                Some(live) => live,
                None => conn.insert(Conn::connect(addr).await?),
            };
            live.exchange(request, keep_ok_body).await
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        };
        if result.is_err() {
            *conn = None;
        }
        result
    }

    /// Sends a request, retrying transport-level failures up to [`MAX_RETRIES`] times with the
    /// same request (and so the same idempotency key). `make` builds each attempt's request.
    pub(crate) async fn send_with_retries(
        &self,
        addr: SocketAddr,
        conn: &mut Option<Conn>,
        make: impl Fn() -> Request<Full<Bytes>>,
        keep_ok_body: bool,
        retries: &mut u64,
    ) -> Result<Answer, Failure> {
        let mut attempt = 0;
        loop {
            match self.attempt(addr, conn, make(), keep_ok_body).await {
                Ok(answer) => return Ok(answer),
                Err(failure) if attempt >= MAX_RETRIES => return Err(failure),
                Err(_) => {
                    attempt += 1;
                    *retries += 1;
                    tokio::time::sleep(retry_backoff(attempt)).await;
                }
            }
        }
    }
}

/// A short pause before retry `attempt` (1-based): 5, 10, 20 ms. Long enough not to spin on
/// a refused connection, short next to a request timeout.
fn retry_backoff(attempt: u32) -> Duration {
    Duration::from_millis(5 << (attempt - 1).min(4))
}

/// One keep-alive HTTP/1.1 connection. Its driver runs in a task of its own (cheaper than
/// polling it from the worker's task: docs/decisions.md), which is aborted, closing the
/// socket, when the `Conn` is dropped: a connection whose state is unknown is never reused.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
        let stream = TcpStream::connect(addr).await.map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        let driver = tokio::spawn(async move {
            // Its end (closed or broken) shows as an error of the request in flight, if any.
            let _ = driver.await;
        })
        .abort_handle();
        Ok(Conn { sender, driver })
    }

    /// Sends `request` and reads the whole answer. The caller drops the connection after an
    /// error.
    async fn exchange(&mut self, request: Request<Full<Bytes>>, keep_ok_body: bool) -> Result<Answer, Failure> {
        let sender = &mut self.sender;
        // Not ready means the connection has closed since the last answer.
        sender.ready().await.map_err(|_| Failure::Connect)?;
        let response = sender.send_request(request).await.map_err(|_| Failure::Connect)?;
        let status = response.status();
        let limit = if status.is_success() {
            if keep_ok_body { OK_BODY_LIMIT } else { 0 }
        } else {
            ERROR_BODY_LIMIT
        };
        let body = read_body(response.into_body(), limit)
            .await
            .map_err(|_| Failure::Connect)?;
        Ok(Answer { status, body })
    }
}

/// Reads a body to its end, keeping at most `limit` bytes of it.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, hyper::Error> {
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && kept.len() < limit
        {
            let take = data.len().min(limit - kept.len());
            kept.extend_from_slice(&data[..take]);
        }
    }
    Ok(kept.freeze())
}

/// The error code of a non-2xx answer: the `code` of its problem+json body, or `http_<status>`
/// when the body has none. Never fails.
pub fn error_code(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Problem<'a> {
        #[serde(borrow)]
        code: Option<std::borrow::Cow<'a, str>>,
    }
    // Only an object can be a problem document (serde would also read a struct from an array).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return format!("http_{}", status.as_u16());
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(Problem { code: Some(code) }) if is_plausible_code(&code) => code.into_owned(),
        _ => format!("http_{}", status.as_u16()),
    }
}

/// A code is a short token; anything else (prose, a huge string) would make a poor map key.
fn is_plausible_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_graphic())
}

/// Percent-encodes one URL path segment or query value (everything but unreserved characters).
pub(crate) fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_taken_from_a_problem_json_body() {
        let body = br#"{"type":"about:blank","title":"Not enough stock","status":409,"code":"insufficient_stock","shortages":[]}"#;
        assert_eq!(error_code(StatusCode::CONFLICT, body), "insufficient_stock");
    }

    #[test]
    fn error_code_falls_back_to_the_status_when_the_body_has_no_usable_code() {
        assert_eq!(
            error_code(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>"),
            "http_502"
        );
        assert_eq!(error_code(StatusCode::INTERNAL_SERVER_ERROR, b""), "http_500");
        assert_eq!(error_code(StatusCode::CONFLICT, br#"{"title":"no code"}"#), "http_409");
        assert_eq!(error_code(StatusCode::CONFLICT, br#"{"code":42}"#), "http_409");
        assert_eq!(error_code(StatusCode::CONFLICT, br#"{"code":"two words"}"#), "http_409");
        assert_eq!(error_code(StatusCode::CONFLICT, br#"["code"]"#), "http_409");
        let long = format!(r#"{{"code":"{}"}}"#, "x".repeat(65));
        assert_eq!(error_code(StatusCode::CONFLICT, long.as_bytes()), "http_409");
    }

    #[test]
    fn error_code_handles_escaped_codes() {
        assert_eq!(error_code(StatusCode::CONFLICT, br#"{"code":"a\u005fb"}"#), "a_b");
    }

    #[test]
    fn target_accepts_urls_with_and_without_scheme_and_a_base_path() {
        let t = Target::new("http://localhost:9000/shop/", Some("s3cret"), Duration::from_secs(1)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.base_path.as_str()),
            ("localhost", 9000, "/shop")
        );
        assert_eq!(t.uri("/api/v1/orders").unwrap().to_string(), "/shop/api/v1/orders");
        assert_eq!(t.authorization.as_ref().unwrap(), "Bearer s3cret");
        let t = Target::new("127.0.0.1:8080", None, Duration::from_secs(1)).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.base_path.as_str()), ("127.0.0.1", 8080, ""));
        assert_eq!(t.host_header, "127.0.0.1:8080");
        let t = Target::new("http://[::1]:8080", None, Duration::from_secs(1)).unwrap();
        assert_eq!(t.host, "::1");
        assert!(Target::new("https://example.test", None, Duration::from_secs(1)).is_err());
        assert!(Target::new("http://h:1/?q=1", None, Duration::from_secs(1)).is_err());
        assert!(Target::new("http://127.0.0.1:293256", None, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn percent_encode_leaves_unreserved_characters_alone() {
        assert_eq!(percent_encode("abc-_.~09"), "abc-_.~09");
        assert_eq!(percent_encode("a b/c+d=="), "a%20b%2Fc%2Bd%3D%3D");
    }

    #[test]
    fn retry_backoff_grows_and_stays_short() {
        assert_eq!(retry_backoff(1), Duration::from_millis(5));
        assert_eq!(retry_backoff(3), Duration::from_millis(20));
        assert!(retry_backoff(100) <= Duration::from_millis(80));
    }
}
