//! What a run counted, and the report made of it.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram tells apart: one hour, in microseconds. Longer ones are
/// recorded as this.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// What one worker (or, merged, the whole run) counted.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub ok: u64,
    pub errors: HashMap<String, u64>,
    pub retries: u64,
    /// Every order's latency, first attempt to final answer, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Tally {
            ok: 0,
            errors: HashMap::new(),
            retries: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("constant histogram bounds are valid"),
        }
    }

    pub(crate) fn record_ok(&mut self, latency: Duration) {
        self.ok += 1;
        self.record_latency(latency);
    }

    pub(crate) fn record_error(&mut self, code: &str, latency: Duration) {
        match self.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                self.errors.insert(code.to_owned(), 1);
            }
        }
        self.record_latency(latency);
    }

    fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.retries += other.retries;
        for (code, count) in other.errors {
            *self.errors.entry(code).or_insert(0) += count;
        }
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }
}

/// Latency percentiles of all orders (successful or not), first attempt to final answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencyUs {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// The outcome of a bench run. Serialises as the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The server URL as given.
    pub url: String,
    /// The product ordered.
    pub product_id: String,
    pub product_name: String,
    /// Orders the run was asked to place (each placed exactly once, retries aside).
    pub orders_requested: u64,
    /// Orders answered 201 or 202.
    pub ok: u64,
    /// Orders that failed, all codes together.
    pub errors: u64,
    /// Failed orders by code: the problem+json `code`, or `timeout`, `connect`, `http_<status>`.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Attempts repeated (with the same idempotency key) after a transport-level failure.
    pub retries: u64,
    pub concurrency: u32,
    /// Wall time of the order phase (setup and restock excluded).
    pub elapsed_ms: f64,
    /// Successful orders per second of `elapsed_ms`.
    pub orders_per_s: f64,
    pub latency_us: LatencyUs,
}

/// Who was benchmarked, for the report.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub url: String,
    pub product_id: String,
    pub product_name: String,
    pub orders_requested: u64,
    pub concurrency: u32,
}

impl BenchReport {
    pub(crate) fn new(info: RunInfo, tally: &Tally, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        let orders_per_s = if secs > 0.0 { tally.ok as f64 / secs } else { 0.0 };
        let h = &tally.latency_us;
        let latency_us = if h.is_empty() {
            LatencyUs::default()
        } else {
            LatencyUs {
                p50: h.value_at_quantile(0.50),
                p95: h.value_at_quantile(0.95),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            }
        };
        let errors_by_code: BTreeMap<String, u64> = tally.errors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        BenchReport {
            url: info.url,
            product_id: info.product_id,
            product_name: info.product_name,
            orders_requested: info.orders_requested,
            ok: tally.ok,
            errors: errors_by_code.values().sum(),
            errors_by_code,
            retries: tally.retries,
            concurrency: info.concurrency,
            elapsed_ms: round3(secs * 1000.0),
            orders_per_s: round3(orders_per_s),
            latency_us,
        }
    }

    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let errors = if self.errors_by_code.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .errors_by_code
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            format!("  ({})", list.join(", "))
        };
        out.push_str(&format!(
            "lemonade bench: {} orders of {:?} ({}) against {}, concurrency {}\n",
            self.orders_requested, self.product_name, self.product_id, self.url, self.concurrency
        ));
        out.push_str(&format!("  ok          {}\n", self.ok));
        out.push_str(&format!("  errors      {}{}\n", self.errors, errors));
        out.push_str(&format!("  retries     {}\n", self.retries));
        out.push_str(&format!("  elapsed     {:.3} s\n", self.elapsed_ms / 1000.0));
        out.push_str(&format!("  throughput  {:.1} orders/s\n", self.orders_per_s));
        let l = &self.latency_us;
        out.push_str(&format!(
            "  latency     p50 {}  p95 {}  p99 {}  max {}\n",
            fmt_us(l.p50),
            fmt_us(l.p95),
            fmt_us(l.p99),
            fmt_us(l.max)
        ));
        out
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and string-keyed maps always serialises.
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"cannot serialise report: {e}"}}"#))
    }
}

/// Prints the report on stdout: the summary, or one JSON object when `json`. A closed stdout
/// is not an error worth a panic.
pub fn print_report(report: &BenchReport, json: bool) {
    let text = if json {
        let mut line = report.to_json();
        line.push('\n');
        line
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.3} s", us as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(orders: u64) -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1:8080".into(),
            product_id: "p1".into(),
            product_name: "Lemonade".into(),
            orders_requested: orders,
            concurrency: 4,
        }
    }

    #[test]
    fn percentiles_of_1_to_1000_microseconds_are_exact() {
        let mut tally = Tally::new();
        for us in 1..=1000u64 {
            tally.record_ok(Duration::from_micros(us));
        }
        let report = BenchReport::new(info(1000), &tally, Duration::from_millis(500));
        assert_eq!(
            report.latency_us,
            LatencyUs {
                p50: 500,
                p95: 950,
                p99: 990,
                max: 1000
            }
        );
        assert_eq!(report.ok, 1000);
        assert_eq!(report.errors, 0);
        assert_eq!(report.orders_per_s, 2000.0);
        assert_eq!(report.elapsed_ms, 500.0);
    }

    #[test]
    fn large_latencies_keep_three_significant_digits() {
        let mut tally = Tally::new();
        tally.record_ok(Duration::from_millis(1234));
        let max = BenchReport::new(info(1), &tally, Duration::from_secs(2)).latency_us.max;
        assert!((1_233_000..=1_236_000).contains(&max), "{max}");
    }

    #[test]
    fn merged_tallies_add_counts_errors_by_code_and_latencies() {
        let mut a = Tally::new();
        a.record_ok(Duration::from_micros(100));
        a.record_error("insufficient_stock", Duration::from_micros(200));
        a.retries = 2;
        let mut b = Tally::new();
        b.record_ok(Duration::from_micros(300));
        b.record_error("insufficient_stock", Duration::from_micros(400));
        b.record_error("timeout", Duration::from_secs(10));
        b.retries = 3;
        a.merge(b);
        let report = BenchReport::new(info(5), &a, Duration::from_secs(1));
        assert_eq!(report.ok, 2);
        assert_eq!(report.errors, 3);
        assert_eq!(
            report.errors_by_code,
            BTreeMap::from([("insufficient_stock".to_owned(), 2), ("timeout".to_owned(), 1)])
        );
        assert_eq!(report.retries, 5);
        assert_eq!(report.orders_per_s, 2.0, "throughput counts successful orders only");
        assert_eq!(report.latency_us.p50, 300);
        assert!(report.latency_us.max >= 9_990_000);
    }

    #[test]
    fn empty_run_reports_zeros_without_dividing_by_zero() {
        let report = BenchReport::new(info(0), &Tally::new(), Duration::ZERO);
        assert_eq!(report.latency_us, LatencyUs::default());
        assert_eq!(report.orders_per_s, 0.0);
        assert_eq!(report.ok + report.errors, 0);
    }

    #[test]
    fn zero_and_huge_latencies_are_recorded_not_dropped() {
        let mut tally = Tally::new();
        tally.record_ok(Duration::ZERO);
        tally.record_ok(Duration::from_secs(100_000));
        assert_eq!(tally.latency_us.len(), 2);
    }

    #[test]
    fn json_report_has_the_documented_fields() {
        let mut tally = Tally::new();
        tally.record_ok(Duration::from_micros(10));
        tally.record_error("http_503", Duration::from_micros(10));
        let json: serde_json::Value =
            serde_json::from_str(&BenchReport::new(info(2), &tally, Duration::from_secs(1)).to_json()).unwrap();
        for field in [
            "url",
            "product_id",
            "product_name",
            "orders_requested",
            "ok",
            "errors",
            "errors_by_code",
            "retries",
            "concurrency",
            "elapsed_ms",
            "orders_per_s",
            "latency_us",
        ] {
            assert!(json.get(field).is_some(), "missing {field} in {json}");
        }
        assert_eq!(json["errors_by_code"]["http_503"], 1);
        assert_eq!(json["latency_us"]["p99"], 10);
    }

    #[test]
    fn text_report_lists_error_codes() {
        let mut tally = Tally::new();
        tally.record_error("timeout", Duration::from_micros(1500));
        let text = BenchReport::new(info(1), &tally, Duration::from_secs(1)).to_text();
        assert!(text.contains("errors      1  (timeout: 1)"), "{text}");
        assert!(text.contains("p50 1.50 ms"), "{text}");
    }
}
