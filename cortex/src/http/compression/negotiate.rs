//! `Accept-Encoding` negotiation (RFC 9110, section 12.5.3).

/// A content coding Cortex can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// `br`.
    Brotli,
    /// `gzip` (also accepted as `x-gzip`).
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` value and metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// What the client's `Accept-Encoding` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// Send with this coding.
    Compress(Coding),
    /// Send as is.
    Identity,
    /// The client refuses identity and every coding Cortex has: 406.
    NotAcceptable,
}

/// Picks the coding for an `Accept-Encoding` header value.
///
/// q-values have up to three decimals; an entry with an invalid q-value is
/// ignored; `*` stands for every coding not listed (identity included);
/// identity is acceptable unless refused (`identity;q=0`, or `*;q=0` without
/// `identity`), and preferred over a listed coding only when the client gave
/// it a higher weight. The highest q wins; on a tie the server prefers `br`, then
/// `gzip`, and a coding over identity. No header: identity.
///
/// ```
/// use cortex::http::compression::{negotiate, Coding, Negotiated};
///
/// assert_eq!(negotiate(Some("gzip, deflate, br")), Negotiated::Compress(Coding::Brotli));
/// assert_eq!(negotiate(Some("br;q=0.5, gzip")), Negotiated::Compress(Coding::Gzip));
/// assert_eq!(negotiate(Some("identity;q=0")), Negotiated::NotAcceptable);
/// assert_eq!(negotiate(None), Negotiated::Identity);
/// ```
pub fn negotiate(header: Option<&str>) -> Negotiated {
    let Some(header) = header else {
        return Negotiated::Identity;
    };
    let (mut br, mut gzip, mut identity, mut star): (
        Option<u16>,
        Option<u16>,
        Option<u16>,
        Option<u16>,
    ) = (None, None, None, None);
    for entry in header.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let mut q = Some(1000u16);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                q = None;
                continue;
            };
            if k.trim().eq_ignore_ascii_case("q") {
                q = crate::util::parse_qvalue(v.trim());
            }
        }
        let Some(q) = q else { continue };
        let slot = if coding.eq_ignore_ascii_case("br") {
            &mut br
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else if coding == "*" {
            &mut star
        } else {
            continue;
        };
        // A coding listed twice keeps its highest weight.
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    let br = br.or(star).unwrap_or(0);
    let gzip = gzip.or(star).unwrap_or(0);
    // Identity is always acceptable unless refused, but only a weight the
    // client wrote down can make it preferred over a coding it listed.
    let identity = identity.or(star);
    let best = if br >= gzip {
        (Coding::Brotli, br)
    } else {
        (Coding::Gzip, gzip)
    };
    if best.1 > 0 && identity.is_none_or(|q| best.1 >= q) {
        Negotiated::Compress(best.0)
    } else if identity.is_none_or(|q| q > 0) {
        Negotiated::Identity
    } else {
        Negotiated::NotAcceptable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;
    use Negotiated::*;

    #[test]
    fn table() {
        let cases: &[(Option<&str>, Negotiated)] = &[
            (None, Identity),
            (Some(""), Identity),
            (Some("gzip"), Compress(Gzip)),
            (Some("x-gzip"), Compress(Gzip)),
            (Some("GZIP"), Compress(Gzip)),
            (Some("br"), Compress(Brotli)),
            (Some("gzip, br"), Compress(Brotli)),
            (Some("br;q=0.8, gzip;q=0.9"), Compress(Gzip)),
            (Some("br;q=1.0, gzip;q=1"), Compress(Brotli)),
            (Some("gzip;q=0.5, identity"), Identity),
            (Some("gzip;q=0"), Identity),
            (Some("*"), Compress(Brotli)),
            (Some("*;q=0.5, gzip"), Compress(Gzip)),
            (Some("*;q=0"), NotAcceptable),
            (Some("identity;q=0"), NotAcceptable),
            (Some("identity;q=0, deflate"), NotAcceptable),
            (Some("identity;q=0, gzip;q=0.1"), Compress(Gzip)),
            (Some("*;q=0, identity"), Identity),
            (Some("deflate, compress"), Identity),
            // Invalid q-values drop the entry only.
            (Some("br;q=2, gzip"), Compress(Gzip)),
            (Some("br;q=0.1234, gzip;q=0.1"), Compress(Gzip)),
            (Some("br;q=abc"), Identity),
            (Some("br;q"), Identity),
            (Some(";;;,,,  , garbage;;q=1"), Identity),
            (Some("gzip;q=0.001"), Compress(Gzip)),
            (Some("gzip;q=0.001, identity;q=0"), Compress(Gzip)),
        ];
        for (header, expected) in cases {
            assert_eq!(negotiate(*header), *expected, "{header:?}");
        }
    }
}
