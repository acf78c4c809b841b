//! Helpers shared by the integration tests: running the external validators
//! (`promtool`, Python's `prometheus_client` OpenMetrics parser) on text the
//! tests produce, reading samples of the global registry, and collecting the
//! spans of one trace.
//!
//! `.ci/run` installs both. On a developer machine without them the checks
//! are skipped with a message on stderr; under CI (`CI` set) a missing
//! validator fails the test, so CI can never pass by skipping.

use std::io::Write;
use std::process::{Command, Stdio};

pub mod policy;

pub mod spans;

/// The messages of the Prometheus protobuf exposition
/// (`proto/prometheus_metrics.proto`), and a reader of its delimited
/// framing.
pub mod prometheus_model {
    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        rust_2018_idioms
    )]
    mod generated {
        include!(concat!(env!("OUT_DIR"), "/io.prometheus.client.rs"));
    }
    pub use generated::*;

    /// Every length-delimited `MetricFamily` of a body.
    ///
    /// # Panics
    /// On a body that is not a sequence of them.
    pub fn families(mut body: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !body.is_empty() {
            let family = <MetricFamily as prost::Message>::decode_length_delimited(&mut body)
                .expect("a length-delimited MetricFamily");
            out.push(family);
        }
        out
    }
}

/// The tonic service and client generated from `proto/shop.proto`, and
/// [`Shop`](shop::Shop), the service the tests and the example serve.
pub mod shop {
    #[allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        rust_2018_idioms
    )]
    mod generated {
        tonic::include_proto!("shop");
    }
    pub use generated::*;

    /// Answers `Get`: a summary, or NOT_FOUND for order 0.
    #[derive(Debug, Clone, Copy)]
    pub struct Shop;

    /// The work inside a call: a `#[traced]` function, so a trace shows
    /// the handler under its server span.
    #[cortex::traced]
    async fn summarize(id: u32) -> String {
        format!("order {id}: 2 items")
    }

    #[tonic::async_trait]
    impl orders_server::Orders for Shop {
        async fn get(
            &self,
            request: tonic::Request<OrderRequest>,
        ) -> Result<tonic::Response<OrderReply>, tonic::Status> {
            match request.into_inner().id {
                0 => Err(tonic::Status::not_found("no order 0")),
                id => Ok(tonic::Response::new(OrderReply {
                    summary: summarize(id).await,
                })),
            }
        }
    }
}

/// Environment variables for `from_vars`-style readers: the value of
/// `name` among `pairs`.
pub fn vars<'a, V: AsRef<str>>(pairs: &'a [(&'a str, V)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_ref().to_owned())
    }
}

/// Waits until `done` holds, checking every 5 ms for at most 5 s; panics
/// naming `what` if it never does.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The value, in the global registry's text exposition, of the sample whose
/// name and labels are exactly `series`.
pub fn sample(series: &str) -> Option<f64> {
    value(
        &cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText),
        series,
    )
}

/// The value, in a text exposition, of the sample whose name and labels are
/// exactly `series`.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == series).then(|| value.parse().expect("sample value is a number"))
    })
}

/// What a validator said.
#[derive(Debug)]
pub enum Verdict {
    /// The text was accepted.
    Accepted,
    /// The text was refused; the validator's output says why.
    Refused(String),
    /// The validator is not installed here (never returned under CI).
    Unavailable,
}

impl Verdict {
    /// Panics with the validator's reasons if it refused the input.
    #[track_caller]
    pub fn assert_ok(self) {
        if let Verdict::Refused(why) = self {
            panic!("the validator refused the input:\n{why}");
        }
    }
}

fn run(program: &str, args: &[&str], input: &str, install_hint: &str) -> Verdict {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{program} is required under CI but could not be started ({e}); {install_hint}"
                );
            }
            eprintln!("skipping the {program} check: {e}; {install_hint}");
            return Verdict::Unavailable;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("validator reads its input");
    let out = child.wait_with_output().expect("validator runs to the end");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Verdict::Accepted
    } else if text.contains("No module named") && std::env::var_os("CI").is_none() {
        eprintln!("skipping the {program} check: {text}; {install_hint}");
        Verdict::Unavailable
    } else {
        Verdict::Refused(text)
    }
}

/// `promtool check metrics` on Prometheus text-format input.
pub fn promtool_check_metrics(text: &str) -> Verdict {
    run(
        "promtool",
        &["check", "metrics"],
        text,
        "install it with `apt-get install prometheus`",
    )
}

/// `promtool check rules` on a rules file, then, with `test`, `promtool
/// test rules` on that test file, which must name the rules as `rules.yml`
/// (both are copied to a fresh directory).
pub fn promtool_rules(rules: &str, test: Option<&std::path::Path>) -> Verdict {
    let dir = std::env::temp_dir().join(format!(
        "cortex-promtool-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(dir.join("rules.yml"), rules).expect("rules written");
    let mut verdict = run_in(&dir, &["check", "rules", "rules.yml"]);
    if let (Verdict::Accepted, Some(test)) = (&verdict, test) {
        std::fs::copy(test, dir.join("test.yml")).expect("test file copied");
        verdict = run_in(&dir, &["test", "rules", "test.yml"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    verdict
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> Verdict {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("promtool is required under CI but could not be started ({e})");
            }
            eprintln!(
                "skipping the promtool check: {e}; install it with `apt-get install prometheus`"
            );
            return Verdict::Unavailable;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Verdict::Accepted
    } else {
        Verdict::Refused(text)
    }
}

/// Parses OpenMetrics text with `prometheus_client.openmetrics.parser`, the
/// reference parser; any error it raises is a refusal. Prints the number of
/// families parsed on success.
pub fn openmetrics_parse(text: &str) -> Verdict {
    const SCRIPT: &str = "import sys\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
families = list(text_string_to_metric_families(sys.stdin.read()))\n\
print(len(families))\n";
    run(
        "python3",
        &["-c", SCRIPT],
        text,
        "install it with `pip install prometheus_client`",
    )
}

/// Checks OTLP/HTTP JSON bodies (traces or metrics) with `otlp_validate.py` (hex ids,
/// integer enums, then a strict parse into the official
/// `ExportTraceServiceRequest`). Uses the workplace's shared copy beside the
/// checkout when there is one, else the copy in `tests/tools`.
pub fn otlp_validate(bodies: &[String]) -> Verdict {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../shared/tools/otlp_validate.py");
    let script = if shared.exists() {
        shared
    } else {
        manifest.join("tools/otlp_validate.py")
    };
    let dir = std::env::temp_dir().join(format!(
        "cortex-otlp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut args = vec![script.to_string_lossy().into_owned()];
    for (i, body) in bodies.iter().enumerate() {
        let path = dir.join(format!("body-{i}.json"));
        std::fs::write(&path, body).expect("write a body");
        args.push(path.to_string_lossy().into_owned());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let verdict = run(
        "python3",
        &refs,
        "",
        "install its packages with `pip install opentelemetry-proto protobuf`",
    );
    let _ = std::fs::remove_dir_all(&dir);
    verdict
}

/// Checks that an OTLP/protobuf body parses with the official
/// `ExportTraceServiceRequest` (or `ExportMetricsServiceRequest`, when the
/// JSON holds `resourceMetrics`) and carries exactly what the OTLP/JSON body
/// for the same data says (ids compared as hex; for metrics, the time of
/// collection left out, as two pushes of the same values differ in it).
pub fn otlp_protobuf_matches_json(protobuf: &[u8], json: &str) -> Verdict {
    const SCRIPT: &str = r#"
import base64, json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
data = open(sys.argv[1], 'rb').read()
want = json.load(open(sys.argv[2]))
metrics = 'resourceMetrics' in want
message = ExportMetricsServiceRequest() if metrics else ExportTraceServiceRequest()
message.ParseFromString(data)
got = json_format.MessageToDict(message)
def untimed(node):
    # Two pushes of the same values differ only in when they were made.
    if isinstance(node, dict):
        return {k: untimed(v) for k, v in node.items() if k != 'timeUnixNano'}
    if isinstance(node, list):
        return [untimed(v) for v in node]
    return node
if metrics:
    got, want = untimed(got), untimed(want)
def hexify(node):
    if isinstance(node, dict):
        for k in ('traceId', 'spanId', 'parentSpanId'):
            if k in node:
                node[k] = base64.b64decode(node[k]).hex()
        for v in node.values():
            hexify(v)
    elif isinstance(node, list):
        for v in node:
            hexify(v)
hexify(got)
def norm(node):
    # Protobuf's JSON writes enums by name and 64-bit ints as strings;
    # OTLP/JSON writes enums as numbers.
    if isinstance(node, dict):
        return {k: norm(v) for k, v in node.items()}
    if isinstance(node, list):
        return [norm(v) for v in node]
    return str(node)
got_n, want_n = norm(got), norm(want)
kinds = {'SPAN_KIND_INTERNAL': '1', 'SPAN_KIND_SERVER': '2', 'SPAN_KIND_CLIENT': '3', 'SPAN_KIND_PRODUCER': '4', 'SPAN_KIND_CONSUMER': '5'}
codes = {'STATUS_CODE_UNSET': '0', 'STATUS_CODE_OK': '1', 'STATUS_CODE_ERROR': '2'}
temporalities = {'AGGREGATION_TEMPORALITY_DELTA': '1', 'AGGREGATION_TEMPORALITY_CUMULATIVE': '2'}
def enums(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == 'kind' and v in kinds: v = kinds[v]
            elif k == 'code' and v in codes: v = codes[v]
            elif k == 'aggregationTemporality' and v in temporalities: v = temporalities[v]
            out[k] = enums(v)
        return out
    if isinstance(node, list):
        return [enums(v) for v in node]
    return node
def drop_defaults(node):
    if isinstance(node, dict):
        return {k: drop_defaults(v) for k, v in node.items() if v not in ('0', [], {}) or k in ('status',)}
    if isinstance(node, list):
        return [drop_defaults(v) for v in node]
    return node
a, b = drop_defaults(enums(got_n)), drop_defaults(enums(want_n))
if a != b:
    sys.exit('protobuf and JSON differ:\n' + json.dumps(a, indent=1, sort_keys=True) + '\n---\n' + json.dumps(b, indent=1, sort_keys=True))
print('same')
"#;
    let dir = std::env::temp_dir().join(format!(
        "cortex-otlp-proto-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let (p, j) = (dir.join("body.pb"), dir.join("body.json"));
    std::fs::write(&p, protobuf).expect("write the protobuf body");
    std::fs::write(&j, json).expect("write the JSON body");
    let verdict = run(
        "python3",
        &["-c", SCRIPT, &p.to_string_lossy(), &j.to_string_lossy()],
        "",
        "install its packages with `pip install opentelemetry-proto protobuf`",
    );
    let _ = std::fs::remove_dir_all(&dir);
    verdict
}

/// A stand-in for an OTLP collector: an HTTP receiver on a loopback port
/// that records each request and answers with scripted statuses.
pub mod receiver {
    use std::collections::VecDeque;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::{Arc, Mutex};

    /// One request as received.
    #[derive(Debug, Clone)]
    pub struct Received {
        /// The request target.
        pub path: String,
        /// The request line and headers.
        pub head: String,
        /// The body (`Content-Length` bytes), as text (lossy).
        pub body: String,
        /// The body's bytes as sent.
        pub raw_body: Vec<u8>,
    }

    /// A running receiver.
    #[derive(Debug)]
    pub struct Receiver {
        /// Where it listens.
        pub addr: SocketAddr,
        requests: Arc<Mutex<Vec<Received>>>,
    }

    impl Receiver {
        /// Starts one that answers the n-th request with `script[n]`, and
        /// 200 once the script runs out.
        pub fn start(script: &[u16]) -> Receiver {
            let replies = script
                .iter()
                .map(|status| {
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nRetry-After: 0\r\nConnection: close\r\n\r\n{{}}"
                    )
                })
                .collect();
            Self::replying("127.0.0.1:0", replies).expect("a loopback port")
        }

        /// Starts one on `bind` that answers the n-th request with the raw
        /// response `replies[n]`, and 200 once they run out.
        ///
        /// # Errors
        /// When `bind` cannot be bound (no IPv6 loopback, say).
        pub fn replying(bind: &str, replies: Vec<String>) -> std::io::Result<Receiver> {
            let listener = TcpListener::bind(bind)?;
            let addr = listener.local_addr()?;
            let requests = Arc::new(Mutex::new(Vec::new()));
            let script = Arc::new(Mutex::new(replies.into_iter().collect::<VecDeque<_>>()));
            let seen = Arc::clone(&requests);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let Some(request) = read_request(&mut stream) else {
                        continue;
                    };
                    seen.lock().expect("not poisoned").push(request);
                    let reply = script
                        .lock()
                        .expect("not poisoned")
                        .pop_front()
                        .unwrap_or_else(|| {
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                                .into()
                        });
                    let _ = stream.write_all(reply.as_bytes());
                }
            });
            Ok(Receiver { addr, requests })
        }

        /// `http://addr`.
        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// Every request so far.
        pub fn requests(&self) -> Vec<Received> {
            self.requests.lock().expect("not poisoned").clone()
        }

        /// The bodies of every request so far.
        pub fn bodies(&self) -> Vec<String> {
            self.requests().into_iter().map(|r| r.body).collect()
        }
    }

    fn read_request(stream: &mut impl Read) -> Option<Received> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            let rest = &buf[end + 4..];
            if rest.len() >= len {
                let raw_body = rest[..len].to_vec();
                return Some(Received {
                    path: head.split_whitespace().nth(1).unwrap_or("").to_owned(),
                    body: String::from_utf8_lossy(&raw_body).into_owned(),
                    head,
                    raw_body,
                });
            }
        }
    }
}

/// A minimal HTTP/1.1 client over a raw socket, so tests can also send what
/// a well-behaved client never would.
pub mod raw {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A parsed response.
    #[derive(Debug)]
    pub struct Response {
        /// Status code.
        pub status: u16,
        /// Headers, names lower-cased, in order.
        pub headers: Vec<(String, String)>,
        /// Body (de-chunked), as text (lossy).
        pub body: String,
        /// Body (de-chunked), as bytes.
        pub bytes: Vec<u8>,
    }

    impl Response {
        /// The first header with this (lower-case) name.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// How many headers have this name.
        pub fn header_count(&self, name: &str) -> usize {
            self.headers.iter().filter(|(n, _)| n == name).count()
        }
    }

    /// Sends `request` verbatim and reads the response until the server
    /// closes the connection (send `Connection: close`). Gives up after 10 s.
    pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
            .await
            .expect("response within 10 s")
            .expect("read response");
        parse(&buf)
    }

    /// `GET path` with extra header lines (each `Name: value`).
    pub async fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
        request(addr, "GET", path, headers, "").await
    }

    /// Any method, with a body.
    pub async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &str,
    ) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        exchange(addr, req.as_bytes()).await
    }

    /// Parses a response; panics on a malformed one (the server is wrong).
    pub fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]);
        let rest = &raw[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let bytes = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    fn dechunk(mut s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(line_end) = s.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&s[..line_end])
                .ok()
                .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
                .unwrap_or(0);
            if size == 0 || s.len() < line_end + 2 + size {
                break;
            }
            out.extend_from_slice(&s[line_end + 2..line_end + 2 + size]);
            s = &s[(line_end + 4 + size).min(s.len())..];
        }
        out
    }
}

/// Bodies for the compression tests.
pub mod bodies {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body::Frame;

    /// A body that yields `left` copies of `chunk`, lazily: a gigabyte costs
    /// one chunk of memory.
    #[derive(Debug)]
    pub struct Chunks {
        /// Chunks still to yield.
        pub left: u64,
        /// The chunk.
        pub chunk: Bytes,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
        }
    }
}
