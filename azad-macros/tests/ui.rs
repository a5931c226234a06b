//! Compile-time behaviour of the attributes, pinned with trybuild snapshots.
//!
//! `.stderr` text changes between compiler versions; the snapshots are taken with the one
//! toolchain of our machines (stable 1.95), and a different compiler skips rather than fails.
//! `AZAD_TEST_ONLY=<file name>` runs a single case.

#[rustversion::attr(not(stable(1.95)), ignore = "UI snapshots are pinned to rustc 1.95")]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    let only = std::env::var("AZAD_TEST_ONLY").unwrap_or_else(|_| "*".to_owned());
    t.pass(format!("tests/require_scope/pass/{only}.rs"));
    t.compile_fail(format!("tests/require_scope/fail/{only}.rs"));
}
