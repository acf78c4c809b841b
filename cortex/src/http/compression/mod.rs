//! Response compression (brotli and gzip) and request decompression.
//!
//! The [`Server`](crate::http::Server) compresses every response the client
//! accepts compressed, as it streams; [`Compression::apply`] and
//! [`CompressionLayer`] do the same for other hyper or tower stacks.
//!
//! When a response is compressed: `Content-Encoding` is set,
//! `Content-Length` and `Accept-Ranges` are removed, and `Vary:
//! Accept-Encoding` is added once. Responses of compressible types get
//! `Vary` even when sent as is. Never compressed: responses that already
//! have a `Content-Encoding`, partial content (`Content-Range`), `HEAD`
//! answers, 1xx/204/304, `Cache-Control: no-transform`, and the types in
//! the skip list (images other than SVG, audio, video, archives,
//! `text/event-stream`; configurable). A response whose size is known and
//! below the threshold (1024 bytes by default) is sent as is. A strong
//! `ETag` on a compressed response becomes weak (`W/"..."`): the bytes are
//! not the ones it names.
//!
//! A client that refuses identity and every coding Cortex has
//! (`Accept-Encoding: identity;q=0, deflate`) gets 406 only in place of a
//! `GET` or `OPTIONS` answer that would have been compressed; anything else
//! (a 204, a 304, an image, an already encoded body, a `POST` whose handler
//! already ran) goes out as identity. A route can turn compression off with
//! [`RouteOptions::compress`](crate::http::RouteOptions::compress), for
//! responses that carry a secret next to text an attacker chooses (BREACH).
//!
//! ```
//! use cortex::http::compression::Compression;
//!
//! let compression = Compression::default()
//!     .threshold(512)
//!     .brotli_quality(5)
//!     .skip_content_type("application/x-custom-packed")
//!     .decode_requests(8 * 1024 * 1024);
//! # let _ = compression;
//! ```

mod body;
mod layer;
mod negotiate;

use std::io::Read;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Body as _;

pub use layer::{CompressionLayer, CompressionService};
pub use negotiate::{negotiate, Coding, Negotiated};

use self::body::{ByteCounters, CompressedBody};
use super::{Body, Response};
use crate::metrics::{Counter, Family, Registry};

/// Content types never compressed by default (prefix matches; `image/` is
/// skipped except `image/svg+xml`).
pub const DEFAULT_SKIP: [&str; 12] = [
    "image/",
    "audio/",
    "video/",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/x-xz",
    "application/zstd",
    "text/event-stream",
];

/// How responses are compressed. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Compression {
    threshold: u64,
    gzip_level: u32,
    brotli_quality: u32,
    skip: Vec<String>,
    always: Vec<String>,
    decode_limit: Option<usize>,
    metrics: Option<Metrics>,
}

#[derive(Debug, Clone)]
struct Metrics {
    responses: Family<Counter>,
    bytes_in: Family<Counter>,
    bytes_out: Family<Counter>,
}

impl Default for Compression {
    /// Threshold 1024 bytes, brotli quality 4, gzip level 6, the default skip
    /// list, request decoding off, metrics in the global registry.
    fn default() -> Self {
        Compression {
            threshold: 1024,
            gzip_level: 6,
            brotli_quality: 4,
            skip: DEFAULT_SKIP.iter().map(|s| (*s).to_owned()).collect(),
            always: vec!["image/svg+xml".to_owned()],
            decode_limit: None,
            metrics: Metrics::new(crate::metrics::global()).ok(),
        }
    }
}

impl Metrics {
    fn new(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(Metrics {
            responses: registry.counter_family(
                "cortex_http_compressed_responses_total",
                "Responses sent compressed, by encoding.",
                &["encoding"],
            )?,
            bytes_in: registry.counter_family(
                "cortex_http_compression_in_bytes_total",
                "Response bytes before compression, by encoding.",
                &["encoding"],
            )?,
            bytes_out: registry.counter_family(
                "cortex_http_compression_out_bytes_total",
                "Response bytes after compression, by encoding.",
                &["encoding"],
            )?,
        })
    }
}

impl Compression {
    /// Responses with a known size below `bytes` are sent as is.
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes;
        self
    }

    /// gzip level, 0..=9 (clamped). Default 6.
    pub fn gzip_level(mut self, level: u32) -> Self {
        self.gzip_level = level.min(9);
        self
    }

    /// brotli quality, 0..=11 (clamped). Default 4: 11 is far too slow to
    /// compress on the fly.
    pub fn brotli_quality(mut self, quality: u32) -> Self {
        self.brotli_quality = quality.min(11);
        self
    }

    /// Never compress content types starting with `prefix`.
    pub fn skip_content_type(mut self, prefix: &str) -> Self {
        self.skip.push(prefix.to_ascii_lowercase());
        self
    }

    /// Compress this exact content type even if a skip prefix matches it.
    pub fn compress_content_type(mut self, content_type: &str) -> Self {
        self.always.push(content_type.to_ascii_lowercase());
        self
    }

    /// Replaces the skip list.
    pub fn skip_list(mut self, prefixes: &[&str]) -> Self {
        self.skip = prefixes.iter().map(|p| p.to_ascii_lowercase()).collect();
        self
    }

    /// Decodes `Content-Encoding: gzip` and `br` request bodies, refusing
    /// (413) any that decodes to more than `max_decoded_bytes`.
    pub fn decode_requests(mut self, max_decoded_bytes: usize) -> Self {
        self.decode_limit = Some(max_decoded_bytes);
        self
    }

    /// Records the compression metrics in `registry` instead of the global
    /// one (`None`: no metrics).
    pub fn metrics_registry(mut self, registry: Option<&Registry>) -> Self {
        self.metrics = registry.and_then(|r| Metrics::new(r).ok());
        self
    }

    fn compressible_type(&self, headers: &HeaderMap) -> bool {
        let Some(ct) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return true;
        };
        let ct = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.always.contains(&ct) || !self.skip.iter().any(|p| ct.starts_with(p.as_str()))
    }

    /// Compresses `response` if the request allows it and it pays; see the
    /// [module docs](self) for the rules. `accept_encoding` is the request's
    /// header value.
    pub fn apply(
        &self,
        method: &Method,
        accept_encoding: Option<&str>,
        mut response: Response,
    ) -> Response {
        let status = response.status();
        let headers = response.headers();
        let compressible = self.compressible_type(headers);
        let eligible = compressible
            && *method != Method::HEAD
            && !status.is_informational()
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED
            && !headers.contains_key(header::CONTENT_ENCODING)
            && !headers.contains_key(header::CONTENT_RANGE)
            && !no_transform(headers);
        if compressible {
            add_vary(response.headers_mut());
        }
        let small = response
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n < self.threshold);
        let would_compress = eligible && !small;
        let coding = match negotiate(accept_encoding) {
            Negotiated::Compress(c) if would_compress => c,
            Negotiated::Compress(_) | Negotiated::Identity => return response,
            // A 406 only replaces a response that would have been
            // compressed, and only for a safe method: a POST's handler has
            // already run, and its answer must not be lost. Anything else
            // goes out as identity, which RFC 9110 allows.
            Negotiated::NotAcceptable
                if would_compress && (*method == Method::GET || *method == Method::OPTIONS) =>
            {
                let mut r = super::text(
                    StatusCode::NOT_ACCEPTABLE,
                    "none of the accepted content codings is available (br, gzip, identity)\n",
                );
                add_vary(r.headers_mut());
                return r;
            }
            Negotiated::NotAcceptable => return response,
        };
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::ACCEPT_RANGES);
        weaken_etag(&mut parts.headers);
        parts.headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.as_str()),
        );
        let counters = self.metrics.as_ref().and_then(|m| {
            m.responses.with(&[coding.as_str()], Counter::inc).ok()?;
            Some(ByteCounters {
                bytes_in: m.bytes_in.with_labels(&[coding.as_str()]).ok()?,
                bytes_out: m.bytes_out.with_labels(&[coding.as_str()]).ok()?,
            })
        });
        let body =
            CompressedBody::new(body, coding, self.gzip_level, self.brotli_quality, counters);
        http::Response::from_parts(parts, Body::new(body))
    }

    /// Decodes a compressed request body (when enabled).
    ///
    /// # Errors
    /// A [`DecodeError`]; its [`status`](DecodeError::status) is the answer
    /// to send (415, 400 or 413).
    pub fn decode_request(&self, headers: &HeaderMap, body: Bytes) -> Result<Bytes, DecodeError> {
        let Some(limit) = self.decode_limit else {
            return Ok(body);
        };
        let Some(coding) = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(body);
        };
        let coding = coding.trim().to_ascii_lowercase();
        let reader: Box<dyn Read> = match coding.as_str() {
            "identity" | "" => return Ok(body),
            "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(&body[..])),
            "br" => Box::new(brotli::Decompressor::new(&body[..], 4096)),
            other => return Err(DecodeError::Unsupported(other.to_owned())),
        };
        // Read one byte past the limit: if it arrives, the body is too big.
        let mut out = Vec::new();
        match reader.take(limit as u64 + 1).read_to_end(&mut out) {
            Ok(_) if out.len() > limit => Err(DecodeError::TooLarge { limit }),
            Ok(_) => Ok(Bytes::from(out)),
            Err(e) => Err(DecodeError::Corrupt {
                coding,
                reason: e.to_string(),
            }),
        }
    }
}

/// Why a compressed request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A `Content-Encoding` other than gzip or br (415).
    #[error("request Content-Encoding `{0}` is not supported (gzip, br)")]
    Unsupported(String),
    /// The body is not valid in its coding (400).
    #[error("request body is not valid {coding}: {reason}")]
    Corrupt {
        /// The coding.
        coding: String,
        /// The decoder's message.
        reason: String,
    },
    /// The body decodes to more than the limit (413): a decompression bomb
    /// is refused before it is unpacked.
    #[error("request body decodes to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

impl DecodeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            DecodeError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DecodeError::Corrupt { .. } => StatusCode::BAD_REQUEST,
            DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The error as a plain-text response.
    pub fn to_response(&self) -> Response {
        super::text(self.status(), format!("{self}\n"))
    }
}

fn no_transform(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// Adds `Vary: Accept-Encoding` unless it (or `*`) is already there.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v.eq_ignore_ascii_case("accept-encoding")
        });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// A strong `ETag` names the exact bytes; the compressed bytes differ, so it
/// becomes weak (`W/"..."`), as RFC 9110 asks of a transformed body.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(tag) = headers.get(header::ETAG) else {
        return;
    };
    let bytes = tag.as_bytes();
    if bytes.starts_with(b"W/") {
        return;
    }
    let mut weak = Vec::with_capacity(bytes.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(bytes);
    if let Ok(value) = HeaderValue::from_bytes(&weak) {
        headers.insert(header::ETAG, value);
    }
}
