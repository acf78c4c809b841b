//! Two functions defining one objective name differently: the compiler
//! sees one function at a time, so the program finds it at start and
//! refuses to make rules from it.

#[cortex::objective(name = "checkout", success_rate = 99.9)]
#[cortex::counted]
fn charge() {}

#[cortex::objective(name = "checkout", success_rate = 99.0)]
#[cortex::counted]
fn refund() {}

#[test]
fn a_conflicting_objective_is_refused_with_both_places() {
    charge();
    refund();
    let err = cortex::slo::objectives().unwrap_err();
    let cortex::slo::Error::Conflict {
        name,
        first_function,
        second_function,
        ..
    } = &err;
    assert_eq!(*name, "checkout");
    let mut places = [first_function.as_str(), second_function.as_str()];
    places.sort();
    assert_eq!(places, ["slo_conflict::charge", "slo_conflict::refund"]);
    let message = err.to_string();
    assert!(
        message.contains("`checkout` (99.9 % of calls succeed)"),
        "{message}"
    );
    assert!(
        message.contains("`checkout` (99 % of calls succeed)"),
        "{message}"
    );
    assert!(message.contains("define it once as a `const`"), "{message}");
    assert_eq!(cortex::slo::prometheus_rules().unwrap_err(), err);
    assert!(cortex::slo::to_json().is_err());
}
