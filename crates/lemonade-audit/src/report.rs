//! What an audit found: how much it read, and every violation, with a text a person reads.

use std::collections::BTreeMap;

use serde::Serialize;

/// Most violations listed per rule; the count is always complete.
pub const VIOLATIONS_SHOWN_MAX: usize = 20;

/// One place where an invariant does not hold.
#[derive(Debug, Serialize)]
pub struct Violation {
    /// The rule's name (`on-hand-equals-ledger`, ...), stable: scripts match on it.
    pub rule: &'static str,
    /// The row it was found in ("order 0193...", "ingredient Lemons (i1)").
    pub subject: String,
    /// What is wrong with it, with the figures compared.
    pub detail: String,
}

/// The result of an audit: the rows read, and the violations in the order they were found
/// (a row's violations together, rows in the order their groups of rules read them).
#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    /// Ingredients read.
    pub ingredients: u64,
    /// Orders read.
    pub orders: u64,
    /// Customers read.
    pub customers: u64,
    /// Idempotency records read (in a cluster, the saga log's public keys).
    pub idempotency_keys: u64,
    /// Every violation found; empty when every invariant holds.
    pub violations: Vec<Violation>,
}

impl AuditReport {
    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    pub(crate) fn flag(&mut self, rule: &'static str, subject: impl Into<String>, detail: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// A report a person can read: counts, then each broken rule with its first examples.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "audited {} ingredients, {} orders, {} customers, {} idempotency keys\n",
            self.ingredients, self.orders, self.customers, self.idempotency_keys
        );
        if self.is_clean() {
            out.push_str("ok: every invariant holds\n");
            return out;
        }
        let mut by_rule: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
        for v in &self.violations {
            by_rule.entry(v.rule).or_default().push(v);
        }
        out.push_str(&format!(
            "FAILED: {} violations of {} rules\n",
            self.violations.len(),
            by_rule.len()
        ));
        for (rule, vs) in by_rule {
            out.push_str(&format!("\n{rule} ({} violations)\n", vs.len()));
            for v in vs.iter().take(VIOLATIONS_SHOWN_MAX) {
                out.push_str(&format!("  {}: {}\n", v.subject, v.detail));
            }
            if vs.len() > VIOLATIONS_SHOWN_MAX {
                out.push_str(&format!("  ... and {} more\n", vs.len() - VIOLATIONS_SHOWN_MAX));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_report_groups_by_rule_and_caps_the_examples() {
        let mut report = AuditReport::default();
        for i in 0..VIOLATIONS_SHOWN_MAX + 5 {
            report.flag(
                "order-total-equals-lines",
                format!("order o{i}"),
                "total 1, lines sum 0",
            );
        }
        report.flag("foreign-keys", "orders row Some(1)", "points at a missing customers");
        let text = report.to_text();
        assert!(text.contains("FAILED: 26 violations of 2 rules"), "{text}");
        assert!(text.contains("\norder-total-equals-lines (25 violations)\n"), "{text}");
        assert!(text.contains("  ... and 5 more\n"), "{text}");
        assert!(text.contains("\nforeign-keys (1 violations)\n"), "{text}");
        assert_eq!(text.matches("  order o").count(), VIOLATIONS_SHOWN_MAX);
        // Rules come in a stable (alphabetical) order.
        assert!(text.find("foreign-keys").unwrap() < text.find("order-total-equals-lines").unwrap());
    }
}
