//! Everything `lemonade check` audits (`lemonade-audit`'s rules, run in the same snapshot
//! the state was read from): each violation it reported is one here. Unknown when it did
//! not run.

use super::Context;
use crate::report::{Findings, Invariant, Report, Violation};

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::Audit);
    match &cx.state.audit {
        None => f.unknown("the audit did not run"),
        Some(violations) => {
            f.checked();
            for v in violations {
                f.flag(Violation {
                    op: None,
                    node: None,
                    time_ms: None,
                    message: format!("{}: {}: {}", v.rule, v.subject, v.detail),
                });
            }
        }
    }
    f.report()
}
