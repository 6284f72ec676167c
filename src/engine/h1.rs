//! HTTP/1.1 exchanges driven by the virtual user's own task: the request written in one piece,
//! the response head parsed with `httparse` (hyper's parser), the body framed by Content-Length,
//! chunked coding or the connection's end, counted and dropped.
//!
//! Why not hyper here: hyper's client connection is a second task fed through a channel, with a
//! `HeaderMap` and a body channel per response. For a load generator that only needs the status,
//! the Server-Timing header, the framing and the byte count, that machinery was most of gate's
//! own CPU per request (docs/performance.md): on one core, what the client spends is what it can
//! send. Flows (bodies to capture from, cookies), LLM streams, HTTP/2 and plain http through a
//! proxy keep hyper. The limits are hyper's: a 400 KiB response head, 100 headers, and the
//! engine's body limit.

use std::pin::Pin;
use std::task::Context;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Method};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The largest response head (status line, headers) read before giving up: hyper's default.
pub const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// The most headers in one response head: hyper's default.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with extensions) or trailer line.
const MAX_LINE_BYTES: usize = 4096;
/// An idle connection older than this is checked for a close by the server before reuse (one
/// non-blocking read); back-to-back requests skip the check.
const PROBE_AFTER_IDLE: Duration = Duration::from_millis(1);

/// How an exchange failed; the connection is then not reusable. The engine's error classes
/// of the same names (`tally::Failure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Reset or closed before the response was whole.
    Reset,
    /// Not an HTTP/1.1 response, or invalid framing.
    Protocol,
    /// The head went past [`MAX_HEAD_BYTES`] or 100 headers.
    HeaderTooLarge,
    /// The body went past the caller's limit.
    BodyTooLarge,
    Tls,
    Timeout,
    Connect,
    Other,
}

/// What a response said, as far as the engine needs it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// When the response head had arrived whole.
    pub headers_at: Instant,
    /// Every `Server-Timing` line, joined by commas (RFC 9110 §5.3).
    pub server_timing: Option<String>,
    /// Body bytes (after chunked decoding).
    pub bytes: u64,
    /// The connection cannot carry another request (`Connection: close`, HTTP/1.0 without
    /// keep-alive, a body delimited by the connection's end).
    pub closes: bool,
}

/// One HTTP/1.1 connection and its read buffer.
pub struct H1Conn<S> {
    io: S,
    /// Body bytes past which the current exchange stops reading ([`Failure::BodyTooLarge`]).
    max_body: u64,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    idle_since: Instant,
}

/// How a response's body ends (RFC 9112 §6.3).
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head said, copied out of the buffer.
struct HeadInfo {
    status: u16,
    server_timing: Option<String>,
    framing: Framing,
    closes: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1Conn<S> {
    pub fn new(io: S) -> H1Conn<S> {
        H1Conn {
            io,
            max_body: u64::MAX,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            idle_since: Instant::now(),
        }
    }

    /// Whether the connection can take another request: nothing unread is waiting and, after
    /// an idle moment, the server has not closed it (a non-blocking read finds nothing).
    pub fn reusable(&mut self) -> bool {
        if self.start != self.end {
            return false;
        }
        if self.idle_since.elapsed() < PROBE_AFTER_IDLE {
            return true;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut rb = ReadBuf::new(&mut self.buf[..]);
        // Ready: the server closed it, reset it, or sent something nobody asked for.
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut rb)
            .is_pending()
    }

    /// Send `request` (a whole serialized request) and read its response to the end.
    /// `head_request`: the method was HEAD (the response has no body whatever it says).
    /// Past `max_body` body bytes it stops. On an error the connection is not reusable.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        max_body: u64,
    ) -> Result<Response, Failure> {
        self.max_body = max_body;
        self.start = 0;
        self.end = 0;
        self.io.write_all(request).await.map_err(io_class)?;
        self.io.flush().await.map_err(io_class)?;
        let head = self.read_head(head_request).await?;
        let headers_at = Instant::now();
        let bytes = match head.framing {
            Framing::None => 0,
            Framing::Length(n) => self.read_length(n).await?,
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => self.read_until_close().await?,
        };
        self.idle_since = Instant::now();
        Ok(Response {
            status: head.status,
            headers_at,
            server_timing: head.server_timing,
            bytes,
            closes: head.closes || matches!(head.framing, Framing::UntilClose),
        })
    }

    /// Read more bytes after `end`, making room first. Returns how many (0: the peer closed).
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = (self.buf.len() * 2).min(MAX_HEAD_BYTES + MAX_LINE_BYTES);
                if grown <= self.buf.len() {
                    return Err(Failure::HeaderTooLarge);
                }
                self.buf.resize(grown, 0);
            }
        }
        let n = self
            .io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(io_class)?;
        self.end += n;
        Ok(n)
    }

    /// The final response head (1xx interim responses skipped), consumed from the buffer.
    async fn read_head(&mut self, head_request: bool) -> Result<HeadInfo, Failure> {
        loop {
            match parse_head(&self.buf[self.start..self.end], head_request)? {
                Some((used, info)) => {
                    self.start += used;
                    // 100 Continue, 103 Early Hints: the real response follows.
                    if (100..200).contains(&info.status) {
                        continue;
                    }
                    return Ok(info);
                }
                None => {
                    if self.end - self.start >= MAX_HEAD_BYTES {
                        return Err(Failure::HeaderTooLarge);
                    }
                    if self.fill().await? == 0 {
                        // Closed before a whole head: the request was not answered.
                        return Err(Failure::Reset);
                    }
                }
            }
        }
    }

    /// Take up to `max` buffered body bytes; returns how many.
    fn take(&mut self, max: u64) -> u64 {
        let n = ((self.end - self.start) as u64).min(max);
        self.start += n as usize;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        n
    }

    async fn read_length(&mut self, len: u64) -> Result<u64, Failure> {
        let mut got = self.take(len);
        while got < len {
            if got > self.max_body {
                return Err(Failure::BodyTooLarge);
            }
            if self.fill().await? == 0 {
                return Err(Failure::Reset);
            }
            got += self.take(len - got);
        }
        Ok(got)
    }

    async fn read_until_close(&mut self) -> Result<u64, Failure> {
        let mut got = self.take(u64::MAX);
        loop {
            if got > self.max_body {
                return Err(Failure::BodyTooLarge);
            }
            if self.fill().await? == 0 {
                return Ok(got);
            }
            got += self.take(u64::MAX);
        }
    }

    async fn read_chunked(&mut self) -> Result<u64, Failure> {
        let mut state = Chunked::Size;
        let mut got = 0u64;
        loop {
            match state {
                Chunked::Size => {
                    if let Some(line) = self.line()? {
                        let size = chunk_size(line)?;
                        self.start += line.len() + 2;
                        state = if size == 0 {
                            Chunked::Trailers(0)
                        } else {
                            Chunked::Data(size)
                        };
                        continue;
                    }
                }
                Chunked::Data(left) => {
                    let n = self.take(left);
                    got += n;
                    if got > self.max_body {
                        return Err(Failure::BodyTooLarge);
                    }
                    state = if n == left {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left - n)
                    };
                    if n == left {
                        continue;
                    }
                }
                Chunked::DataEnd => {
                    if self.end - self.start >= 2 {
                        if &self.buf[self.start..self.start + 2] != b"\r\n" {
                            return Err(Failure::Protocol);
                        }
                        self.start += 2;
                        state = Chunked::Size;
                        continue;
                    }
                }
                Chunked::Trailers(seen) => {
                    if let Some(line) = self.line()? {
                        let used = line.len() + 2;
                        self.start += used;
                        if used == 2 {
                            return Ok(got);
                        }
                        if seen + used > MAX_HEAD_BYTES {
                            return Err(Failure::HeaderTooLarge);
                        }
                        state = Chunked::Trailers(seen + used);
                        continue;
                    }
                }
            }
            if self.fill().await? == 0 {
                return Err(Failure::Reset);
            }
        }
    }

    /// The next CRLF-terminated line in the buffer (without its CRLF), if it is all there.
    fn line(&self) -> Result<Option<&[u8]>, Failure> {
        let avail = &self.buf[self.start..self.end];
        match avail.windows(2).position(|w| w == b"\r\n") {
            Some(i) if i <= MAX_LINE_BYTES => Ok(Some(&avail[..i])),
            Some(_) => Err(Failure::Protocol),
            None if avail.len() > MAX_LINE_BYTES => Err(Failure::Protocol),
            None => Ok(None),
        }
    }
}

#[derive(Clone, Copy)]
enum Chunked {
    Size,
    Data(u64),
    DataEnd,
    /// Trailer bytes seen so far.
    Trailers(usize),
}

/// A chunk-size line: hex digits, then optional whitespace and `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, Failure> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(Failure::Protocol);
    }
    let rest = &line[digits..];
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(Failure::Protocol);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| Failure::Protocol)?;
    u64::from_str_radix(text, 16).map_err(|_| Failure::Protocol)
}

/// Parse a response head at the start of `bytes`: None until it is whole.
fn parse_head(bytes: &[u8], head_request: bool) -> Result<Option<(usize, HeadInfo)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Failure::HeaderTooLarge),
        Err(_) => return Err(Failure::Protocol),
    };
    let status = resp.code.ok_or(Failure::Protocol)?;
    if status == 101 {
        // An upgrade nobody asked for.
        return Err(Failure::Protocol);
    }
    let http10 = resp.version == Some(0);
    let mut server_timing: Option<String> = None;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive = false;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in h.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(part.trim_ascii())
                    .ok()
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or(Failure::Protocol)?;
                // Repeated values must agree (RFC 9110 §8.6).
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::Protocol);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked only when it is the last coding; any other ends with the connection.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"server-timing") {
            let value = String::from_utf8_lossy(h.value);
            match &mut server_timing {
                Some(s) => {
                    s.push(',');
                    s.push_str(&value);
                }
                None => server_timing = Some(value.into_owned()),
            }
        }
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::None
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    Ok(Some((
        used,
        HeadInfo {
            status,
            server_timing,
            framing,
            // A message with both framings is a smuggling risk: never reuse its connection.
            closes: close || (http10 && !keep_alive) || (chunked.is_some() && length.is_some()),
        },
    )))
}

fn io_class(e: std::io::Error) -> Failure {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        return Failure::Tls;
    }
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Failure::Reset,
        TimedOut => Failure::Timeout,
        ConnectionRefused => Failure::Connect,
        InvalidData | InvalidInput => Failure::Protocol,
        _ => Failure::Other,
    }
}

/// Serialize a request in origin form into `out` (cleared first): the request line, `Host`,
/// the headers in order, and a `Content-Length` where there is a body or the method has one.
pub fn encode_request<'a>(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    host: &HeaderValue,
    headers: impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    body: &[u8],
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::HOST {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Serve `response` (in pieces of `piece` bytes) to one request over an in-memory pipe
    /// and return what the exchange made of it.
    fn answer(response: &[u8], piece: usize, head_request: bool) -> Result<Response, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = response.to_vec();
        rt.block_on(async move {
            let (client, mut server) = duplex(1 << 20);
            let server = tokio::spawn(async move {
                let mut req = vec![0u8; 4096];
                let _ = server.read(&mut req).await;
                for part in response.chunks(piece.max(1)) {
                    if server.write_all(part).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
                // The server closes its side.
            });
            let mut conn = H1Conn::new(client);
            let r = conn
                .exchange(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", head_request, 1 << 20)
                .await;
            // The client hangs up first, as the engine does after an error.
            drop(conn);
            let _ = server.await;
            r
        })
    }

    #[test]
    fn content_length_bodies_in_any_pieces() {
        for piece in [1, 3, 7, 1000] {
            let r = answer(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer-Timing: db;dur=2\r\n\r\nhello",
                piece,
                false,
            )
            .unwrap();
            assert_eq!((r.status, r.bytes, r.closes), (200, 5, false), "{piece}");
            assert_eq!(r.server_timing.as_deref(), Some("db;dur=2"));
        }
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for piece in [1, 2, 5, 1000] {
            let r = answer(body, piece, false).unwrap();
            assert_eq!((r.status, r.bytes, r.closes), (200, 15, false), "{piece}");
        }
    }

    #[test]
    fn interim_responses_are_skipped_and_server_timing_lines_joined() {
        let r = answer(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nserver-timing: a;dur=1\r\nServer-Timing: b;dur=2\r\ncontent-length: 0\r\n\r\n",
            4,
            false,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.server_timing.as_deref(), Some("a;dur=1,b;dur=2"));
    }

    #[test]
    fn bodies_without_length_end_with_the_connection() {
        let r = answer(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", 3, false).unwrap();
        assert_eq!((r.bytes, r.closes), (13, true));
        let r = answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3, false).unwrap();
        assert!(r.closes, "HTTP/1.0 without keep-alive");
        let r = answer(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok",
            3,
            false,
        )
        .unwrap();
        assert!(r.closes);
    }

    #[test]
    fn no_body_for_head_204_and_304() {
        let r = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 100, true).unwrap();
        assert_eq!(r.bytes, 0);
        for s in [204, 304] {
            let text = format!("HTTP/1.1 {s} X\r\nContent-Length: 9\r\n\r\n");
            let r = answer(text.as_bytes(), 100, false).unwrap();
            assert_eq!((r.status, r.bytes), (s, 0));
        }
    }

    #[test]
    fn hostile_responses_are_named() {
        let cases: &[(&[u8], Failure)] = &[
            (b"SSH-2.0-OpenSSH_9.6\r\n", Failure::Protocol),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                Failure::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
                Failure::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                Failure::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
                Failure::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                Failure::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                Failure::Reset,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", Failure::Reset),
            (b"", Failure::Reset),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                Failure::Protocol,
            ),
        ];
        for (response, class) in cases {
            assert_eq!(
                answer(response, 64, false).unwrap_err(),
                *class,
                "{}",
                String::from_utf8_lossy(response)
            );
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            answer(&many, 4096, false).unwrap_err(),
            Failure::HeaderTooLarge
        );
        let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        huge.resize(2 << 20, b'a');
        assert_eq!(
            answer(&huge, 65536, false).unwrap_err(),
            Failure::HeaderTooLarge
        );
    }

    #[test]
    fn requests_are_serialized_in_origin_form() {
        let mut out = Vec::new();
        let json = HeaderValue::from_static("application/json");
        let len = HeaderValue::from_static("99");
        encode_request(
            &mut out,
            &Method::POST,
            "/api/v1/orders?x=1",
            &HeaderValue::from_static("shop.test:8080"),
            [
                (&http::header::CONTENT_TYPE, &json),
                (&http::header::CONTENT_LENGTH, &len),
            ]
            .into_iter(),
            b"{}",
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /api/v1/orders?x=1 HTTP/1.1\r\nhost: shop.test:8080\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        encode_request(
            &mut out,
            &Method::GET,
            "/",
            &HeaderValue::from_static("h"),
            std::iter::empty(),
            b"",
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
    }
}
