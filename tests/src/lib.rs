//! Helpers shared by the integration tests: running the external validators
//! (`promtool`, Python's `prometheus_client` OpenMetrics parser) on text the
//! tests produce.
//!
//! `.ci/run` installs both. On a developer machine without them the checks
//! are skipped with a message on stderr; under CI (`CI` set) a missing
//! validator fails the test, so CI can never pass by skipping.

use std::io::Write;
use std::process::{Command, Stdio};

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
