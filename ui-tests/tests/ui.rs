//! Every macro mistake is a compile error on the offending token (one
//! mistake per file in `ui/fail`), and every supported function shape
//! compiles (`ui/pass`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
