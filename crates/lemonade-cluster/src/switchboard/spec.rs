//! The switchboard's settings as text a person writes and reads, parsed at the edge into
//! types with limits: `stock: lose-reply 10%, delay 50ms±20ms; crm: refuse 5%`.
//!
//! ```text
//! spec     = section *( ";" section ) [ ";" ]       (or nothing: no faults)
//! section  = target ":" rule *( "," rule )
//! target   = service [ "/" call ]                   calls to a service, or to one of its calls
//!          | "@" process                            this process itself
//! service  = "stock" | "orders" | "crm"
//! call     = a path of rpc.rs after /internal/v1/, e.g. reservations/reserve
//! process  = "coordinator" | "stock" | "orders" | "crm"
//! rule     = call-fault [ chance ]                  under a service
//!          | "exit" point [ chance ] | "clock" offset   under @process
//! call-fault = "refuse" | "reset" | "garble" | "truncate" | "hang" | "lose-reply"
//!          | "duplicate" | "rate-limit" [ duration ] | "delay" duration [ "±" duration ]
//! point    = "after-commit" | "on-receive"
//! chance   = number "%"     (0 to 100, up to two decimals; 100% when left out)
//! duration = digits ( "ms" | "s" );  offset = ( "+" | "-" ) duration
//! ```
//! `+-` may stand for `±`. [`FaultSpec`]'s `Display` writes the same syntax back, and parsing
//! it gives the same spec.

use std::fmt;

use lemonade_store::migrations::Role;

use crate::rpc::{PATHS, Service};

/// Longest spec, in bytes.
pub const SPEC_BYTES_MAX: usize = 4_096;
/// Most sections (targets) in one spec.
pub const SECTIONS_MAX: usize = 32;
/// Most rules under one target.
pub const RULES_PER_TARGET_MAX: usize = 8;
/// Longest delay, and longest jitter of one, in ms.
pub const DELAY_MS_MAX: u64 = 10_000;
/// Longest `Retry-After` of an injected 429, in ms.
pub const RETRY_AFTER_MS_MAX: u64 = 60_000;
/// `Retry-After` of an injected 429 when the rule gives none, in ms.
pub const RETRY_AFTER_MS_DEFAULT: u64 = 1_000;
/// Largest clock offset either way, in ms (one hour).
pub const CLOCK_OFFSET_MS_MAX: u64 = 3_600_000;

/// The common prefix of every internal call's path, left out in a spec.
const CALL_PREFIX: &str = "/internal/v1/";

/// A chance, in hundredths of a percent: 0 to 10,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(u16);

impl Percent {
    /// Always.
    pub const ALWAYS: Percent = Percent(10_000);

    /// `hundredths` of a percent, if at most 100%.
    pub fn from_hundredths(hundredths: u16) -> Option<Percent> {
        (hundredths <= 10_000).then_some(Percent(hundredths))
    }

    /// The chance in hundredths of a percent.
    pub fn hundredths(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, part) = (self.0 / 100, self.0 % 100);
        match part {
            0 => write!(f, "{whole}%"),
            p if p.is_multiple_of(10) => write!(f, "{whole}.{}%", p / 10),
            p => write!(f, "{whole}.{p:02}%"),
        }
    }
}

/// One way a call to another service is made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallFault {
    /// The connection is refused: nothing was sent.
    Refuse,
    /// The call is carried out and the connection is reset while its reply comes back.
    Reset,
    /// The call is carried out and its reply's body is garbled.
    Garble,
    /// The call is carried out and its reply's body is cut short.
    Truncate,
    /// The service answers 429 with `Retry-After`; nothing was done.
    RateLimit { retry_after_ms: u64 },
    /// The call waits this long (± a uniform jitter) before going on; other rules still apply.
    Delay { delay_ms: u64, jitter_ms: u64 },
    /// Nothing comes back until the caller's timeout; nothing was sent.
    Hang,
    /// The call is carried out and its reply is lost: the caller's outcome is unknown.
    LoseReply,
    /// The call is delivered twice; the caller hears the first reply.
    Duplicate,
}

impl CallFault {
    /// The fault's name in a spec and in the metric's `kind` label.
    pub fn name(self) -> &'static str {
        match self {
            CallFault::Refuse => "refuse",
            CallFault::Reset => "reset",
            CallFault::Garble => "garble",
            CallFault::Truncate => "truncate",
            CallFault::RateLimit { .. } => "rate-limit",
            CallFault::Delay { .. } => "delay",
            CallFault::Hang => "hang",
            CallFault::LoseReply => "lose-reply",
            CallFault::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for CallFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match *self {
            CallFault::RateLimit { retry_after_ms } if retry_after_ms != RETRY_AFTER_MS_DEFAULT => {
                write!(f, " {}", Ms(retry_after_ms))
            }
            CallFault::Delay { delay_ms, jitter_ms } => {
                write!(f, " {}", Ms(delay_ms))?;
                if jitter_ms > 0 {
                    write!(f, "±{}", Ms(jitter_ms))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A fault of calls, and how often it strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRule {
    pub fault: CallFault,
    pub chance: Percent,
}

impl fmt::Display for CallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fault)?;
        if self.chance != Percent::ALWAYS {
            write!(f, " {}", self.chance)?;
        }
        Ok(())
    }
}

/// Where a process can be made to exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitPoint {
    /// A request that changes something has arrived; its handler has not run.
    OnReceive,
    /// A request that changes something was answered with success by its handler (its
    /// commit is durable) and the reply is not written yet.
    AfterCommit,
}

impl ExitPoint {
    /// The point's name in a spec.
    pub fn name(self) -> &'static str {
        match self {
            ExitPoint::OnReceive => "on-receive",
            ExitPoint::AfterCommit => "after-commit",
        }
    }
}

/// A fault of the process itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessRule {
    /// The process exits at `point`, with this chance each time it passes it.
    Exit { point: ExitPoint, chance: Percent },
    /// The process's clock reads this far off, in ms.
    Clock { offset_ms: i64 },
}

impl fmt::Display for ProcessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProcessRule::Exit { point, chance } => {
                write!(f, "exit {}", point.name())?;
                if chance != Percent::ALWAYS {
                    write!(f, " {chance}")?;
                }
                Ok(())
            }
            ProcessRule::Clock { offset_ms } => {
                let sign = if offset_ms < 0 { '-' } else { '+' };
                write!(f, "clock {sign}{}", Ms(offset_ms.unsigned_abs()))
            }
        }
    }
}

/// What the calls to a section's rules are: every call to a service, or one of its calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Service(Service),
    /// A service and the full path of one of its calls (one of [`PATHS`]).
    Call(Service, &'static str),
}

impl Target {
    /// The service called.
    pub fn service(self) -> Service {
        match self {
            Target::Service(s) | Target::Call(s, _) => s,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service(s) => write!(f, "{s}"),
            Target::Call(s, path) => write!(f, "{s}/{}", path.trim_start_matches(CALL_PREFIX)),
        }
    }
}

/// Every fault to inject, parsed: the rules of calls per target, and of processes per role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSpec {
    calls: Vec<(Target, Vec<CallRule>)>,
    processes: Vec<(Role, Vec<ProcessRule>)>,
}

impl FaultSpec {
    /// Whether the spec injects nothing.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.processes.is_empty()
    }

    /// The rules of calls, per target, in the order given.
    pub fn calls(&self) -> &[(Target, Vec<CallRule>)] {
        &self.calls
    }

    /// The rules of processes, per role, in the order given.
    pub fn processes(&self) -> &[(Role, Vec<ProcessRule>)] {
        &self.processes
    }

    /// The rules of the process of `role`.
    pub fn process(&self, role: Role) -> &[ProcessRule] {
        self.processes
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, rules)| rules.as_slice())
            .unwrap_or_default()
    }

    /// What the process of `role` is given of this spec (by `lemonade cluster`): every
    /// section of calls (those to services it never calls stay unused) and its own
    /// `@role` section.
    pub fn for_role(&self, role: Role) -> FaultSpec {
        FaultSpec {
            calls: self.calls.clone(),
            processes: self.processes.iter().filter(|(r, _)| *r == role).cloned().collect(),
        }
    }

    /// The rules that apply to a call of `path` to `service`: those of the call first, then
    /// those of the service.
    pub fn rules_for(&self, service: Service, path: &str) -> impl Iterator<Item = &CallRule> {
        let of_call = self
            .calls
            .iter()
            .filter(move |(t, _)| matches!(t, Target::Call(s, p) if *s == service && *p == path));
        let of_service = self.calls.iter().filter(move |(t, _)| *t == Target::Service(service));
        of_call.chain(of_service).flat_map(|(_, rules)| rules.iter())
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut section = |f: &mut fmt::Formatter<'_>, head: &dyn fmt::Display, rules: Vec<String>| {
            if !std::mem::take(&mut first) {
                f.write_str("; ")?;
            }
            write!(f, "{head}: {}", rules.join(", "))
        };
        for (target, rules) in &self.calls {
            section(f, target, rules.iter().map(ToString::to_string).collect())?;
        }
        for (role, rules) in &self.processes {
            section(
                f,
                &format_args!("@{}", role.as_str()),
                rules.iter().map(ToString::to_string).collect(),
            )?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FaultSpec {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text)
    }
}

/// A duration in ms, written as a person would: `2s`, `250ms`.
struct Ms(u64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 && self.0.is_multiple_of(1_000) {
            write!(f, "{}s", self.0 / 1_000)
        } else {
            write!(f, "{}ms", self.0)
        }
    }
}

/// Why a spec was refused: where (the column, from 1, in characters), what was expected
/// there, and what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// Parses a spec (see the module docs for the syntax).
///
/// # Errors
/// The first place the text departs from the syntax or a limit, as a [`ParseError`].
pub fn parse(text: &str) -> Result<FaultSpec, ParseError> {
    let mut p = Parser { text, pos: 0 };
    if text.len() > SPEC_BYTES_MAX {
        return Err(p.error(&format!("at most {SPEC_BYTES_MAX} bytes of faults")));
    }
    let mut spec = FaultSpec::default();
    p.skip_ws();
    while !p.at_end() {
        if spec.calls.len() + spec.processes.len() == SECTIONS_MAX {
            return Err(p.error(&format!("the end: at most {SECTIONS_MAX} targets")));
        }
        p.section(&mut spec)?;
        p.skip_ws();
        if p.eat(';') {
            p.skip_ws();
        } else if !p.at_end() {
            return Err(p.error("',', ';' or the end"));
        }
    }
    Ok(spec)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// A refusal at the current position.
    fn error(&self, expected: &str) -> ParseError {
        self.error_at(self.pos, expected)
    }

    fn error_at(&self, pos: usize, expected: &str) -> ParseError {
        let found: String = self.text[pos..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | ':'))
            .take(24)
            .collect();
        let found = match (found.is_empty(), self.text[pos..].chars().next()) {
            (_, None) => "the end".to_owned(),
            (true, Some(c)) => format!("{c:?}"),
            (false, _) => format!("{found:?}"),
        };
        ParseError {
            column: self.text[..pos].chars().count() + 1,
            expected: expected.to_owned(),
            found,
        }
    }

    /// A word of lower-case letters, digits, `-` and `/`; empty if none is here.
    fn word(&mut self) -> (usize, &'a str) {
        let text = self.text;
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        (start, &text[start..self.pos])
    }

    fn section(&mut self, spec: &mut FaultSpec) -> Result<(), ParseError> {
        let start = self.pos;
        if self.eat('@') {
            let (at, name) = self.word();
            let role = match name {
                "coordinator" => Role::Coordinator,
                "stock" => Role::Stock,
                "orders" => Role::Orders,
                "crm" => Role::Crm,
                _ => return Err(self.error_at(at, "a process: coordinator, stock, orders or crm")),
            };
            if spec.processes.iter().any(|(r, _)| *r == role) {
                return Err(self.error_at(start, "each target once (this one was given before)"));
            }
            self.colon()?;
            let rules = self.rules(Self::process_rule)?;
            spec.processes.push((role, rules));
        } else {
            let target = self.target()?;
            if spec.calls.iter().any(|(t, _)| *t == target) {
                return Err(self.error_at(start, "each target once (this one was given before)"));
            }
            self.colon()?;
            let rules = self.rules(Self::call_rule)?;
            spec.calls.push((target, rules));
        }
        Ok(())
    }

    fn colon(&mut self) -> Result<(), ParseError> {
        self.skip_ws();
        if self.eat(':') {
            Ok(())
        } else {
            Err(self.error("':' after the target"))
        }
    }

    fn target(&mut self) -> Result<Target, ParseError> {
        let (at, word) = self.word();
        let (name, call) = match word.split_once('/') {
            Some((name, call)) => (name, Some(call)),
            None => (word, None),
        };
        let Some(service) = Service::ALL.into_iter().find(|s| s.as_str() == name) else {
            return Err(self.error_at(at, "a target: stock, orders or crm (optionally /<call>), or @<process>"));
        };
        let Some(call) = call else {
            return Ok(Target::Service(service));
        };
        PATHS
            .iter()
            .find(|(s, path, _)| *s == service && path.strip_prefix(CALL_PREFIX) == Some(call))
            .map(|(_, path, _)| Target::Call(service, path))
            .ok_or_else(|| {
                let calls: Vec<_> = PATHS
                    .iter()
                    .filter(|(s, _, _)| *s == service)
                    .map(|(_, p, _)| p.trim_start_matches(CALL_PREFIX))
                    .collect();
                self.error_at(
                    at + name.len() + 1,
                    &format!("a call of the {service} service: {}", calls.join(", ")),
                )
            })
    }

    fn rules<R>(&mut self, rule: fn(&mut Self) -> Result<R, ParseError>) -> Result<Vec<R>, ParseError> {
        let mut rules = Vec::new();
        loop {
            self.skip_ws();
            if rules.len() == RULES_PER_TARGET_MAX {
                return Err(self.error(&format!(
                    "';' or the end: at most {RULES_PER_TARGET_MAX} rules per target"
                )));
            }
            rules.push(rule(self)?);
            self.skip_ws();
            if !self.eat(',') {
                return Ok(rules);
            }
        }
    }

    fn call_rule(&mut self) -> Result<CallRule, ParseError> {
        let (at, kind) = self.word();
        let fault = match kind {
            "refuse" => CallFault::Refuse,
            "reset" => CallFault::Reset,
            "garble" => CallFault::Garble,
            "truncate" => CallFault::Truncate,
            "hang" => CallFault::Hang,
            "lose-reply" => CallFault::LoseReply,
            "duplicate" => CallFault::Duplicate,
            "rate-limit" => {
                self.skip_ws();
                let retry_after_ms = if self.duration_ahead() {
                    self.duration(RETRY_AFTER_MS_MAX, "a Retry-After")?
                } else {
                    RETRY_AFTER_MS_DEFAULT
                };
                CallFault::RateLimit { retry_after_ms }
            }
            "delay" => {
                self.skip_ws();
                let delay_ms = self.duration(DELAY_MS_MAX, "a delay")?;
                let jitter_ms = if self.eat('±') || self.eat_str("+-") {
                    self.duration(DELAY_MS_MAX, "a jitter")?
                } else {
                    0
                };
                CallFault::Delay { delay_ms, jitter_ms }
            }
            _ => {
                return Err(self.error_at(
                    at,
                    "a fault: refuse, reset, garble, truncate, rate-limit, delay, hang, lose-reply or duplicate",
                ));
            }
        };
        let chance = self.chance()?;
        Ok(CallRule { fault, chance })
    }

    fn process_rule(&mut self) -> Result<ProcessRule, ParseError> {
        let (at, kind) = self.word();
        match kind {
            "exit" => {
                self.skip_ws();
                let (at, name) = self.word();
                let point = match name {
                    "after-commit" => ExitPoint::AfterCommit,
                    "on-receive" => ExitPoint::OnReceive,
                    _ => return Err(self.error_at(at, "an exit point: after-commit or on-receive")),
                };
                let chance = self.chance()?;
                Ok(ProcessRule::Exit { point, chance })
            }
            "clock" => {
                self.skip_ws();
                let negative = if self.eat('-') {
                    true
                } else if self.eat('+') {
                    false
                } else {
                    return Err(self.error("a clock offset with its sign, such as +250ms or -2s"));
                };
                let ms = self.duration(CLOCK_OFFSET_MS_MAX, "a clock offset")?;
                let ms = i64::try_from(ms).expect("bounded by CLOCK_OFFSET_MS_MAX");
                Ok(ProcessRule::Clock {
                    offset_ms: if negative { -ms } else { ms },
                })
            }
            _ => Err(self.error_at(at, "a fault of a process: exit or clock")),
        }
    }

    /// Whether a duration (digits then a unit, not `%`) comes next.
    fn duration_ahead(&self) -> bool {
        let rest = self.rest();
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        digits > 0 && (rest[digits..].starts_with("ms") || rest[digits..].starts_with('s'))
    }

    /// Digits then `ms` or `s`, at most `max_ms`.
    fn duration(&mut self, max_ms: u64, what: &str) -> Result<u64, ParseError> {
        let start = self.pos;
        let expected = format!("{what} such as 50ms or 2s (at most {})", Ms(max_ms));
        let digits = self.rest().len() - self.rest().trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || digits > 9 {
            return Err(self.error(&expected));
        }
        let n: u64 = self.rest()[..digits].parse().expect("1 to 9 digits");
        self.pos += digits;
        let ms = if self.eat_str("ms") {
            n
        } else if self.eat('s') {
            n * 1_000
        } else {
            return Err(self.error_at(start, &expected));
        };
        if ms > max_ms {
            return Err(self.error_at(start, &expected));
        }
        Ok(ms)
    }

    /// An optional chance: a number of 0 to 100 with up to two decimals, then `%`.
    fn chance(&mut self) -> Result<Percent, ParseError> {
        self.skip_ws();
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Ok(Percent::ALWAYS);
        }
        let start = self.pos;
        let expected = "a chance of 0% to 100%, up to two decimals, such as 10% or 0.5%";
        let digits = |p: &Self| p.rest().len() - p.rest().trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let whole_len = digits(self);
        if whole_len > 3 {
            return Err(self.error(expected));
        }
        let whole: u32 = self.rest()[..whole_len].parse().expect("1 to 3 digits");
        self.pos += whole_len;
        let mut part = 0u32;
        if self.eat('.') {
            let len = digits(self);
            if len == 0 || len > 2 {
                return Err(self.error_at(start, expected));
            }
            let n: u32 = self.rest()[..len].parse().expect("1 or 2 digits");
            part = if len == 1 { n * 10 } else { n };
            self.pos += len;
        }
        if !self.eat('%') {
            return Err(self.error_at(start, expected));
        }
        u16::try_from(whole * 100 + part)
            .ok()
            .and_then(Percent::from_hundredths)
            .ok_or_else(|| self.error_at(start, expected))
    }
}
