//! The OTLP exporter's HTTP/1.1 client: one request under one deadline, and
//! what the answer means (including `Retry-After`, in seconds or as a date).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime};

/// What one attempt gave.
pub(crate) enum Attempt {
    Accepted,
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Refused {
        status: u16,
        body: String,
    },
}

/// Where a request goes.
pub(crate) struct Target<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a [(String, String)],
    /// `application/json` or `application/x-protobuf`.
    pub(crate) content_type: &'static str,
    /// `Some("gzip")` when the body is gzipped.
    pub(crate) content_encoding: Option<&'static str>,
    /// TLS (an `https://` endpoint), with the roots to trust.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<&'a std::sync::Arc<rustls::ClientConfig>>,
}

/// The connection a request goes over: plain TCP, or TLS on it.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    /// The socket, whose timeouts bound every read and write.
    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// `host:port` as a `Host` header and a URL write it (IPv6 in brackets).
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// POSTs `body`; everything (resolving, connecting, sending, reading the
/// answer) happens before `deadline`, however slowly the receiver reads or
/// answers.
pub(crate) fn post(target: &Target<'_>, body: &[u8], deadline: Instant) -> Attempt {
    let retry = |why: String| Attempt::Retry { why, after: None };
    let timed_out = || retry("the request did not finish within its timeout".into());
    let addrs: Vec<SocketAddr> = match (target.host, target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return retry(format!("cannot resolve {}: {e}", target.host)),
    };
    let mut stream = None;
    for addr in &addrs {
        let Some(remaining) = left(deadline) else {
            return timed_out();
        };
        if let Ok(s) = TcpStream::connect_timeout(addr, remaining) {
            stream = Some(s);
            break;
        }
    }
    let Some(tcp) = stream else {
        return retry(format!(
            "cannot connect to {}",
            authority(target.host, target.port)
        ));
    };
    #[cfg(feature = "tls")]
    let mut stream = match target.tls {
        None => Conn::Plain(tcp),
        Some(config) => {
            let name = match rustls::pki_types::ServerName::try_from(target.host.to_owned()) {
                Ok(n) => n,
                Err(e) => return retry(format!("{} is not a TLS server name: {e}", target.host)),
            };
            match rustls::ClientConnection::new(std::sync::Arc::clone(config), name) {
                Ok(c) => Conn::Tls(Box::new(rustls::StreamOwned::new(c, tcp))),
                Err(e) => return retry(format!("TLS setup failed: {e}")),
            }
        }
    };
    #[cfg(not(feature = "tls"))]
    let mut stream = Conn::Plain(tcp);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\n\
         Content-Length: {}\r\nUser-Agent: cortex/{}\r\nConnection: close\r\n",
        target.path,
        authority(target.host, target.port),
        target.content_type,
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(encoding) = target.content_encoding {
        head.push_str("Content-Encoding: ");
        head.push_str(encoding);
        head.push_str("\r\n");
    }
    for (name, value) in target.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    for chunk in [head.as_bytes(), body] {
        for piece in chunk.chunks(64 * 1024) {
            let Some(remaining) = left(deadline) else {
                return timed_out();
            };
            let _ = stream.socket().set_write_timeout(Some(remaining));
            if let Err(e) = stream.write_all(piece) {
                return match left(deadline) {
                    None => timed_out(),
                    Some(_) => retry(format!("sending failed: {e}")),
                };
            }
        }
    }
    // The status line and headers are all that matter; 64 KiB is plenty.
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while response.len() < 64 * 1024 {
        let Some(remaining) = left(deadline) else {
            if response.is_empty() {
                return timed_out();
            }
            break;
        };
        let _ = stream.socket().set_read_timeout(Some(remaining));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if response.is_empty() {
                    return retry(format!("no response: {e}"));
                }
                break;
            }
        }
    }
    parse_response(&response, SystemTime::now())
}

pub(crate) fn parse_response(raw: &[u8], now: SystemTime) -> Attempt {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return Attempt::Retry {
            why: "the receiver's answer is not HTTP".into(),
            after: None,
        };
    };
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| retry_after(v.trim(), now));
    match status {
        200..=299 => Attempt::Accepted,
        429 | 502 | 503 | 504 => Attempt::Retry {
            why: format!("HTTP {status}"),
            after: retry_after,
        },
        _ => Attempt::Refused {
            status,
            body: body.chars().take(512).collect(),
        },
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (then the time until
/// it; zero for a date past).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = http_date(value)?;
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate, the form HTTP sends
/// (`Sun, 06 Nov 1994 08:49:37 GMT`); `None` for anything else.
fn http_date(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i64;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(http_date("soon"), None);
    }
}
