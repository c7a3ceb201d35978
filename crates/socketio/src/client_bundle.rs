//! The client bundle: the built files of the `socket.io-client` npm package,
//! served next to the engine (`/socket.io/socket.io.min.js`, …) as Node's
//! socket.io does with `serveClient: true`, so a page loads the client from
//! the server it talks to, with no CDN.
//!
//! The files are embedded at build time from `client-dist/` (refreshed with
//! `scripts/update-client-bundle.sh`). Like Node: the `ETag` is the client's
//! version, quoted; `If-None-Match` with it (strong or weak) gets 304;
//! `Cache-Control: public, max-age=0`; source maps are `application/json`.
//! Unlike Node, which compresses every response on the fly, a file is
//! gzipped once, on its first request that accepts gzip, and the bytes are
//! kept.

use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

/// The version of the embedded `socket.io-client`.
pub const CLIENT_VERSION: &str = include_str!("../client-dist/VERSION").trim_ascii_end();

/// One embedded file.
struct BundleFile {
    name: &'static str,
    bytes: &'static [u8],
    gzipped: OnceLock<Option<Bytes>>,
}

macro_rules! bundle_file {
    ($name:literal) => {
        BundleFile {
            name: $name,
            bytes: include_bytes!(concat!("../client-dist/", $name)),
            gzipped: OnceLock::new(),
        }
    };
}

/// Every file Node's socket.io serves.
static FILES: [BundleFile; 8] = [
    bundle_file!("socket.io.js"),
    bundle_file!("socket.io.js.map"),
    bundle_file!("socket.io.min.js"),
    bundle_file!("socket.io.min.js.map"),
    bundle_file!("socket.io.msgpack.min.js"),
    bundle_file!("socket.io.msgpack.min.js.map"),
    bundle_file!("socket.io.esm.min.js"),
    bundle_file!("socket.io.esm.min.js.map"),
];

impl BundleFile {
    fn is_map(&self) -> bool {
        self.name.ends_with(".map")
    }

    /// The gzipped bytes, made on first use; none if compression failed
    /// (then the file goes out as it is).
    fn gzipped(&self) -> Option<Bytes> {
        self.gzipped
            .get_or_init(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(self.bytes).ok()?;
                encoder.finish().ok().map(Bytes::from)
            })
            .clone()
    }
}

/// The routes of the bundle under the engine's `path` (`/socket.io/`).
pub(crate) fn routes(path: &str) -> Router {
    let prefix = path.trim_end_matches('/');
    FILES
        .iter()
        .enumerate()
        .fold(Router::new(), |router, (index, file)| {
            router.route(
                &format!("{prefix}/{}", file.name),
                get(move |headers: HeaderMap| async move { serve(&FILES[index], &headers) }),
            )
        })
}

/// The quoted `ETag` of every file.
fn etag() -> String {
    format!("\"{CLIENT_VERSION}\"")
}

fn serve(file: &BundleFile, request: &HeaderMap) -> Response {
    let etag = etag();
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .map(|tag| tag.trim())
                .any(|tag| tag == etag || tag.strip_prefix("W/") == Some(etag.as_str()))
        });
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    let content_type = if file.is_map() {
        "application/json; charset=utf-8"
    } else {
        "application/javascript; charset=utf-8"
    };
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0"),
    );
    headers.insert(header::ETAG, etag_header);
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let gzip = accepts_gzip(request).then(|| file.gzipped()).flatten();
    *response.body_mut() = match gzip {
        Some(bytes) => {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Body::from(bytes)
        }
        None => Body::from(Bytes::from_static(file.bytes)),
    };
    response
}

/// Whether `Accept-Encoding` lists gzip with a quality above zero.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        map
    }

    #[test]
    fn version_is_a_bare_semver() {
        assert!(!CLIENT_VERSION.is_empty());
        assert!(
            CLIENT_VERSION
                .split('.')
                .all(|part| part.parse::<u32>().is_ok())
        );
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "br, deflate"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn gzipped_bytes_inflate_to_the_file() {
        let file = &FILES[2];
        let gzipped = file.gzipped().unwrap_or_default();
        assert!(gzipped.len() < file.bytes.len() / 2);
        let mut decoder = flate2::read::GzDecoder::new(&gzipped[..]);
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut inflated).unwrap_or_default();
        assert_eq!(inflated, file.bytes);
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let etag = etag();
        for tag in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
            let response = serve(&FILES[0], &headers(&[(header::IF_NONE_MATCH, &tag)]));
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tag}");
        }
        let response = serve(&FILES[0], &headers(&[(header::IF_NONE_MATCH, "\"0.0.1\"")]));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::ETAG).map(|v| v.as_bytes()),
            Some(etag.as_bytes())
        );
    }
}
