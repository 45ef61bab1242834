//! Every erasure the shop said yes to ends with its customer erased: one answered 200 or 204
//! is done, and one answered 202 was recorded and finishes by itself (the coordinator's
//! sweeper), so after the liveness phase it must be done too. A customer the state does not
//! hold at all cannot be judged (the store keeps erased customers, anonymised).

use super::Context;
use crate::history::Phase;
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::ErasuresDone);
    let node = cx.state.node(Part::Crm);
    for op in &cx.ops {
        let Op::EraseCustomer { customer } = op.op() else {
            continue;
        };
        let status = op.told().and_then(|t| t.http_status);
        let said_yes = op.outcome() == Phase::Ok || status == Some(202);
        if !said_yes {
            continue;
        }
        f.checked();
        match cx.state.customers.iter().find(|c| c.id == *customer) {
            None => f.unknown(format!(
                "customer {customer}, whose erasure was answered yes, is not in the state"
            )),
            Some(c) if !c.erased => f.flag(Violation::at_op(
                op.index(),
                op.time_ms(),
                node,
                format!(
                    "customer {customer}'s erasure was answered {}, yet they are not erased",
                    status.map_or_else(|| "yes".into(), |s| s.to_string())
                ),
            )),
            Some(_) => {}
        }
    }
    f.report()
}
