//! Every macro mistake is a compile error on the offending token (one
//! mistake per file in `ui/fail`), and every supported function shape
//! compiles (`ui/pass`).

#[test]
fn ui() {
    // Under `cargo llvm-cov` (CI), the cases are built without coverage
    // instrumentation: trybuild builds Cortex again with other features,
    // and two differently built copies of one function would make the
    // report drop both.
    if std::env::var_os("CARGO_LLVM_COV").is_some() {
        std::env::remove_var("RUSTC_WRAPPER");
        std::env::remove_var("LLVM_PROFILE_FILE");
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
