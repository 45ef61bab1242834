//! Proof that the simulation has teeth (issue 12): with a bug planted in one production
//! function (a test-only build, `--features plant-...`), some seed within 1,000 breaks the
//! invariant that bug breaks. Each test runs only in its plant's build; `scripts/test.sh`
//! builds each one.

#![allow(dead_code, unused_imports)]

use lemonade_checker::Invariant;
use lemonade_sim::{Options, Outcome, run};

/// The first seed each plant's search starts from (the CI sample's).
const FROM: u64 = 1_000;
/// Issue 12: each planted bug is caught within this many seeds.
const SEEDS_MAX: u64 = 1_000;

/// Runs seeds from [`FROM`] until one is invalid; its outcome and how many seeds it took.
fn first_failure(options: &Options) -> (Outcome, u64) {
    for n in 0..SEEDS_MAX {
        let outcome = run(FROM + n, options);
        if !outcome.is_valid() {
            return (outcome, n + 1);
        }
    }
    panic!("no seed of {FROM}..{} caught the planted bug", FROM + SEEDS_MAX);
}

/// Asserts the first failing seed broke one of `expected`.
fn caught(expected: &[Invariant]) {
    let (outcome, seeds) = first_failure(&Options::default());
    println!(
        "caught by seed {} after {seeds} seeds ({}):\n{}",
        outcome.seed,
        outcome.rates.describe(),
        outcome.to_text()
    );
    let invalid = outcome.reports.invalid();
    assert!(
        invalid.iter().any(|i| expected.contains(i)),
        "seed {} broke {invalid:?}, not one of {expected:?}",
        outcome.seed
    );
}

#[cfg(feature = "plant-inbox-forgets")]
#[test]
fn an_inbox_that_forgets_an_event_is_caught_applying_it_twice() {
    caught(&[
        Invariant::PointsMatchOrders,
        Invariant::StockConserved,
        Invariant::Audit,
    ]);
}

#[cfg(feature = "plant-step-forgets-result")]
#[test]
fn a_step_whose_key_is_not_stored_with_its_result_is_caught_doing_it_twice() {
    caught(&[
        Invariant::OneOrderPerKey,
        Invariant::StockConserved,
        Invariant::NoPhantomOrders,
        Invariant::PointsMatchOrders,
        Invariant::Audit,
    ]);
}

#[cfg(feature = "plant-sweeper-forgets-sagas")]
#[test]
fn a_sweeper_that_forgets_unfinished_sagas_is_caught_by_the_liveness_phase() {
    caught(&[Invariant::Liveness, Invariant::IndefiniteResolved]);
}

#[cfg(feature = "plant-read-permit-with-caller")]
#[test]
fn a_read_pool_that_frees_a_permit_with_its_caller_is_caught_by_the_liveness_phase() {
    caught(&[Invariant::Liveness]);
}

#[cfg(feature = "plant-compensation-skips-release")]
#[test]
fn a_compensation_that_skips_its_release_is_caught() {
    caught(&[Invariant::Liveness, Invariant::StockConserved, Invariant::Audit]);
}
