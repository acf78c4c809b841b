//! Service-level objectives: labels on the functions' series, the
//! generated rules accepted by `promtool check rules`, and `promtool test
//! rules` (with `tests/slo/burn_rates_test.yml`) proving the page alert
//! fires at a 15x burn and stays silent at 5x, for errors and latency.

use std::path::Path;
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::slo::{self, Objective};
use cortex_tests::{promtool_rules, value};

#[cortex::objective(
    name = "checkout",
    success_rate = 99.9,
    latency = "250ms",
    latency_percentile = 99
)]
#[cortex::counted]
#[cortex::timed(buckets = [0.05, 0.25, 1.0])]
fn charge(cents: u64) -> Result<u64, String> {
    if cents == 0 {
        Err("nothing to charge".into())
    } else {
        Ok(cents)
    }
}

const SEARCH: Objective = Objective::new("search").latency(Duration::from_secs(1), 99.5);

#[cortex::objective(objective = SEARCH)]
#[cortex::timed(name = "search_duration_seconds", buckets = [0.1, 1.0])]
fn search() {}

#[cortex::timed(buckets = [1.0, 5.0])]
#[cortex::objective(objective = SEARCH)]
fn suggest() {}

fn exposition() -> String {
    global().encode(Format::PrometheusText)
}

#[test]
fn objective_labels_are_on_the_series() {
    charge(100).unwrap();
    charge(0).unwrap_err();
    let text = exposition();
    for (series, at_least) in [
        (
            r#"cortex_function_calls_total{function="charge",module="slo",result="ok",objective_name="checkout",objective_percentile="99.9"}"#,
            1.0,
        ),
        (
            r#"cortex_function_calls_total{function="charge",module="slo",result="error",objective_name="checkout",objective_percentile="99.9"}"#,
            1.0,
        ),
        (
            r#"cortex_function_duration_seconds_bucket{function="charge",module="slo",objective_name="checkout",objective_percentile="99",objective_latency_threshold="0.25",le="0.25"}"#,
            2.0,
        ),
        (
            r#"cortex_function_duration_seconds_count{function="charge",module="slo",objective_name="checkout",objective_percentile="99",objective_latency_threshold="0.25"}"#,
            2.0,
        ),
        // A latency-only objective: no counter, the histogram labelled.
        (
            r#"search_duration_seconds_count{function="search",module="slo",objective_name="search",objective_percentile="99.5",objective_latency_threshold="1"}"#,
            0.0,
        ),
        (
            r#"cortex_function_duration_seconds_count{function="suggest",module="slo",objective_name="search",objective_percentile="99.5",objective_latency_threshold="1"}"#,
            0.0,
        ),
    ] {
        let v = value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= at_least, "{series} = {v}");
    }
    cortex_tests::promtool_check_metrics(&text).assert_ok();
}

#[test]
fn objectives_are_listed_with_their_functions() {
    let reports = slo::objectives().unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.objective.name()).collect();
    assert_eq!(names, ["checkout", "search"]);
    let search = &reports[1];
    assert_eq!(search.objective, SEARCH);
    let functions: Vec<(&str, Option<&str>, Option<&str>)> = search
        .functions
        .iter()
        .map(|c| (c.function.as_str(), c.calls_metric, c.duration_metric))
        .collect();
    assert_eq!(
        functions,
        [
            ("search", None, Some("search_duration_seconds")),
            ("suggest", None, Some("cortex_function_duration_seconds")),
        ]
    );
    assert_eq!(
        slo::to_json().unwrap(),
        concat!(
            r#"{"objectives":["#,
            r#"{"name":"checkout","success_rate":99.9,"latency":{"threshold_seconds":0.25,"percentile":99.0},"#,
            r#""functions":[{"function":"charge","module":"slo","calls_metric":"cortex_function_calls_total","duration_metric":"cortex_function_duration_seconds"}]},"#,
            r#"{"name":"search","success_rate":null,"latency":{"threshold_seconds":1.0,"percentile":99.5},"#,
            r#""functions":[{"function":"search","module":"slo","calls_metric":null,"duration_metric":"search_duration_seconds"},"#,
            r#"{"function":"suggest","module":"slo","calls_metric":null,"duration_metric":"cortex_function_duration_seconds"}]}]}"#,
        )
    );
}

#[test]
fn generated_rules_record_every_window_and_alert_as_the_workbook() {
    let rules = slo::prometheus_rules().unwrap();
    for window in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
        assert!(
            rules.contains(&format!(
                "- record: cortex_objective:error_ratio:rate{window}\n"
            )),
            "{rules}"
        );
        assert!(rules.contains(&format!(
            "- record: cortex_objective:latency_ratio:rate{window}\n"
        )));
    }
    // The checkout error ratio over 5m, exactly.
    assert!(rules.contains(concat!(
        "      - record: cortex_objective:error_ratio:rate5m\n",
        "        expr: 'sum(rate(cortex_function_calls_total{objective_name=\"checkout\",result=~\"error|panic\"}[5m])) / sum(rate(cortex_function_calls_total{objective_name=\"checkout\"}[5m]))'\n",
        "        labels:\n",
        "          objective_name: 'checkout'\n",
    )), "{rules}");
    // Two functions with different metric names share one objective.
    assert!(rules.contains(
        "1 - (sum(rate({__name__=~\"cortex_function_duration_seconds_bucket|search_duration_seconds_bucket\",objective_name=\"search\",le=~\"1|1.0\"}[1h])) / sum(rate({__name__=~\"cortex_function_duration_seconds_count|search_duration_seconds_count\",objective_name=\"search\"}[1h])))"
    ), "{rules}");
    // The page alert: 14.4x over 1h and 5m, or 6x over 6h and 30m.
    assert!(rules.contains(
        "expr: '(cortex_objective:error_ratio:rate1h{objective_name=\"checkout\"} > (14.4 * (1 - 99.9 / 100)) and cortex_objective:error_ratio:rate5m{objective_name=\"checkout\"} > (14.4 * (1 - 99.9 / 100))) or (cortex_objective:error_ratio:rate6h{objective_name=\"checkout\"} > (6 * (1 - 99.9 / 100)) and cortex_objective:error_ratio:rate30m{objective_name=\"checkout\"} > (6 * (1 - 99.9 / 100)))'"
    ), "{rules}");
    // A latency-only objective has no error rules.
    assert!(!rules.contains("error_ratio:rate5m{objective_name=\"search\"}"));
    assert_eq!(rules.matches("alert: CortexErrorBudgetBurn").count(), 2);
    assert_eq!(rules.matches("alert: CortexLatencyBudgetBurn").count(), 4);
    promtool_rules(&rules, None).assert_ok();
}

#[test]
fn promtool_proves_the_burn_rate_alerts() {
    let rules = slo::prometheus_rules().unwrap();
    let test = Path::new(env!("CARGO_MANIFEST_DIR")).join("slo/burn_rates_test.yml");
    // The synthetic series of the test file are the ones `charge` exports.
    let text = exposition();
    let committed = std::fs::read_to_string(&test).unwrap();
    for line in committed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- series: '"))
    {
        let series = line.trim_end_matches('\'');
        assert!(
            text.lines()
                .any(|l| l.rsplit_once(' ').is_some_and(|(k, _)| k == series)),
            "{series} is not exported:\n{text}"
        );
    }
    promtool_rules(&rules, Some(&test)).assert_ok();
    // The same test fails against rules that page at the wrong burn rate,
    // so it does judge the rules.
    let wrong = rules
        .replace("(14.4 * ", "(16 * ")
        .replace("(6 * ", "(16 * ");
    assert!(matches!(
        promtool_rules(&wrong, Some(&test)),
        cortex_tests::Verdict::Refused(_)
    ));
}

/// The `Objective` builder outside a `const` keeps the promises of its
/// docs: what it holds, and a panic with the rule's message for each
/// broken rule (in a `const`, the same panic is a compile error).
#[test]
fn the_objective_builder_checks_its_rules_at_run_time_too() {
    use cortex::slo::Objective;
    use std::time::Duration;
    let o = Objective::new("checkout.v2-api")
        .success_rate(99.9)
        .latency(Duration::from_millis(250), 99.0);
    assert_eq!(o.name(), "checkout.v2-api");
    assert_eq!(o.success(), Some(99.9));
    let l = o.latency_promise().unwrap();
    assert_eq!(
        (l.threshold(), l.threshold_seconds(), l.percentile()),
        (Duration::from_millis(250), 0.25, 99.0)
    );
    assert_eq!(Objective::new("plain").latency_promise(), None);

    fn panic_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).unwrap_err();
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap()
    }
    assert_eq!(
        panic_of(|| {
            Objective::new("");
        }),
        "an objective name must not be empty"
    );
    assert_eq!(
        panic_of(|| {
            Objective::new("has space");
        }),
        "an objective name may only hold letters, digits, `_`, `.` and `-` (it becomes a label value and part of rule names)"
    );
    assert_eq!(
        panic_of(|| {
            Objective::new("x").success_rate(100.0);
        }),
        "an objective's success rate must be strictly between 0 and 100 (a percentage: 99.9 means 99.9 %)"
    );
    assert_eq!(
        panic_of(|| {
            Objective::new("x").latency(Duration::from_millis(5), 0.0);
        }),
        "an objective's latency percentile must be strictly between 0 and 100 (99 means 99 % of calls)"
    );
    assert_eq!(
        panic_of(|| {
            Objective::new("x").latency(Duration::ZERO, 99.0);
        }),
        "an objective's latency threshold must be above zero"
    );
    // What `#[objective(objective = CONST)]` checks against the function.
    let check = |o: Objective, counted: bool, timed: &'static [&'static [f64]]| {
        panic_of(move || o.__check(counted, timed, "no counted", "no timed", "not a bound"))
    };
    assert_eq!(check(o, false, &[&[0.25]]), "no counted");
    assert_eq!(check(o, true, &[]), "no timed");
    assert_eq!(check(o, true, &[&[0.1, 0.5]]), "not a bound");
    o.__check(
        true,
        &[&[0.1, 0.25, 1.0]],
        "no counted",
        "no timed",
        "not a bound",
    );
}
