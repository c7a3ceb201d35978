//! HTTP/1.1 messages as bytes: requests written exactly as a test wants
//! them (malformed ones included) and responses parsed from raw bytes.
//! [`HttpConnection`](crate::HttpConnection) sends and reads them.

use std::io;

use serde_json::Value;

/// The bytes of an HTTP/1.1 request: the request line, `Host: 127.0.0.1`
/// unless `headers` has a `Host`, `headers` in order, a `Content-Length`
/// for a body and for every POST and PUT, then the body.
///
/// ```
/// let bytes = iocluster_testkit::http_request("POST", "/x", &[("Origin", "http://a.test")], b"hi");
/// assert_eq!(
///     bytes,
///     b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://a.test\r\nContent-Length: 2\r\n\r\nhi"
/// );
/// ```
pub fn http_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str("Host: 127.0.0.1\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether any header's name starts with `prefix` (case-insensitive).
    pub fn has_header_starting_with(&self, prefix: &str) -> bool {
        self.headers.iter().any(|(n, _)| {
            n.to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
        })
    }

    /// The body as text; fails the test if it is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// The body as JSON; fails the test if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {:?}", self.text()))
    }

    /// The body's Engine.IO packets (a polling payload, split at `\x1e`).
    pub fn packets(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.body)
            .split('\x1e')
            .map(str::to_owned)
            .collect()
    }

    /// Itself if the status is 200, else an error with the status and body.
    pub fn ok(self) -> io::Result<Response> {
        if self.status == 200 {
            Ok(self)
        } else {
            Err(io::Error::other(format!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )))
        }
    }

    /// The status, the headers but `Date`, and the body with `sid`
    /// replaced by `<sid>`: what two answers to the same request share.
    pub fn normalized(&self, sid: &str) -> (u16, Vec<(String, String)>, String) {
        let headers = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.replace(sid, "<sid>")))
            .collect();
        let body = String::from_utf8_lossy(&self.body).replace(sid, "<sid>");
        (self.status, headers, body)
    }

    /// Asserts an Engine.IO error: `status`, JSON content type and body
    /// `{"code":code,"message":message}`.
    pub fn assert_engine_error(&self, status: u16, code: u8, message: &str) {
        assert_eq!(self.status, status, "body: {:?}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.json(),
            serde_json::json!({ "code": code, "message": message })
        );
    }
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from the start of `buf`: `Ok(None)` while it is
/// incomplete, else the response and how many bytes of `buf` it used.
/// `eof` says the connection has ended (a body without a length runs to
/// it); `head_only` says the response answers a HEAD (no body).
pub fn parse_response(
    buf: &[u8],
    eof: bool,
    head_only: bool,
) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length");
    let body_start = head_end + 4;
    let rest = &buf[body_start..];
    let response = |body: Vec<u8>| Response {
        status,
        headers: headers.clone(),
        body,
    };
    if head_only || status < 200 || status == 204 || status == 304 {
        return Ok(Some((response(Vec::new()), body_start)));
    }
    if chunked {
        return Ok(dechunk(rest)?.map(|(body, used)| (response(body), body_start + used)));
    }
    if let Some(length) = length {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        if rest.len() < length {
            return Ok(None);
        }
        return Ok(Some((
            response(rest[..length].to_vec()),
            body_start + length,
        )));
    }
    // Neither: the body runs to the end of the connection.
    if eof {
        Ok(Some((response(rest.to_vec()), buf.len())))
    } else {
        Ok(None)
    }
}

/// A chunked body at the start of `rest` (no trailers): `Ok(None)` while
/// incomplete, else the body and the bytes it used.
fn dechunk(rest: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find(&rest[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_line = std::str::from_utf8(&rest[at..at + line_end]).map_err(|e| e.to_string())?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        let data_start = at + line_end + 2;
        if size == 0 {
            // No trailers: the final CRLF follows.
            if rest.len() < data_start + 2 {
                return Ok(None);
            }
            return Ok(Some((body, data_start + 2)));
        }
        if rest.len() < data_start + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[data_start..data_start + size]);
        at = data_start + size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_response_is_dechunked_and_its_length_counted() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let (response, used) = parse_response(raw, false, false).unwrap().unwrap();
        assert_eq!(response.body, b"abcde");
        assert_eq!(&raw[used..], b"NEXT");
    }

    #[test]
    fn incomplete_response_waits_for_more_bytes() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab";
        assert!(parse_response(raw, false, false).unwrap().is_none());
    }

    #[test]
    fn body_without_length_runs_to_the_end_of_the_connection() {
        let raw = b"HTTP/1.1 400 Bad Request\r\n\r\nall of it";
        assert!(parse_response(raw, false, false).unwrap().is_none());
        let (response, _) = parse_response(raw, true, false).unwrap().unwrap();
        assert_eq!(response.text(), "all of it");
    }

    #[test]
    fn answer_to_head_has_no_body_whatever_its_length_says() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n";
        let (response, used) = parse_response(raw, false, true).unwrap().unwrap();
        assert!(response.body.is_empty());
        assert_eq!(used, raw.len());
    }
}
