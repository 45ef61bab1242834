//! Where this process writes: its log, and the lines for the person running it (where the
//! shop listens, a generated token, the supervisor's news and its children's logs).
//!
//! Two rules. No process ever waits on a reader: not on a `| less` left paused, a terminal
//! stopped with Ctrl-S, or a supervisor that is itself stopped and so does not read its
//! children's pipes. And nothing about the output stops a process: a reader that went away
//! (`| head -3`; EPIPE) means that nobody listens, not that the shop must close.
//!
//! So every line goes through a lossy non-blocking writer (tracing-appender's
//! `non_blocking`), one per stream: a queue of at most [`QUEUED_LINES_MAX`] lines to one
//! thread that does the blocking writes. A line that finds the queue full is dropped and
//! counted; a stream whose write fails for good is written no more (its lines are let go
//! without a count: nobody would read the count either). Every [`DROPPED_REPORT_EVERY`], a
//! process that dropped lines says so in its log ("N log lines dropped ...") and adds them to
//! the metric `lemonade_log_lines_dropped_total`.
//!
//! Without [`init`] (the library used by tests), lines go straight to the standard streams.

use std::io::Write;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Most lines waiting for one stream's writer thread; a line beyond is dropped (and counted).
pub const QUEUED_LINES_MAX: usize = 8_192;

/// How often a process that dropped lines says how many.
pub const DROPPED_REPORT_EVERY: Duration = Duration::from_secs(10);

/// One output stream behind its queue.
struct Stream {
    queue: NonBlocking,
    /// Lines the queue had no room for.
    dropped: ErrorCounter,
    /// Lines the writer thread could not write for now (the stream would have blocked).
    skipped: Arc<AtomicU64>,
}

impl Stream {
    fn open(sink: impl Write + Send + 'static, name: &str) -> (Stream, WorkerGuard) {
        let skipped = Arc::new(AtomicU64::new(0));
        let (queue, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(QUEUED_LINES_MAX)
            .thread_name(&format!("lemonade-{name}"))
            .finish(Lenient::new(sink, Arc::clone(&skipped)));
        let dropped = queue.error_counter();
        (
            Stream {
                queue,
                dropped,
                skipped,
            },
            guard,
        )
    }

    fn dropped_lines(&self) -> u64 {
        self.dropped.dropped_lines() as u64 + self.skipped.load(Ordering::Relaxed)
    }

    fn line(&self, line: &str) {
        // One write is one queued message: the line and its end travel together.
        let _ = self.queue.clone().write(with_newline(line).as_bytes());
    }
}

fn with_newline(line: &str) -> String {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    text
}

static OUT: OnceLock<Stream> = OnceLock::new();
static ERR: OnceLock<Stream> = OnceLock::new();

/// Keeps the writer threads; dropping it (at the end of `main`) writes out what is queued,
/// waiting about a second at most for a reader that does not read.
#[must_use = "the queued output is written out when this is dropped"]
pub struct Guard {
    _threads: [WorkerGuard; 2],
}

/// Sets this process's output up: standard output and standard error each behind a lossy
/// queue, and the log (filtered by `log_filter`, in colour if `ansi`) on standard error.
/// Call once, first thing.
pub fn init(log_filter: &str, ansi: bool) -> Guard {
    let (out, out_thread) = Stream::open(std::io::stdout(), "stdout");
    let (err, err_thread) = Stream::open(std::io::stderr(), "stderr");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter))
        .with_writer(err.queue.clone())
        .with_ansi(ansi)
        .init();
    assert!(
        OUT.set(out).is_ok() && ERR.set(err).is_ok(),
        "output::init is called once"
    );
    Guard {
        _threads: [out_thread, err_thread],
    }
}

/// Writes one line to standard output, never waiting for a reader.
pub fn say(line: &str) {
    match OUT.get() {
        Some(stream) => stream.line(line),
        None => {
            let _ = std::io::stdout().write_all(with_newline(line).as_bytes());
        }
    }
}

/// Writes one line to standard error, never waiting for a reader.
pub fn tell(line: &str) {
    match ERR.get() {
        Some(stream) => stream.line(line),
        None => {
            let _ = std::io::stderr().write_all(with_newline(line).as_bytes());
        }
    }
}

/// Lines dropped so far because nobody read them fast enough, on both streams.
pub fn dropped_lines() -> u64 {
    [&OUT, &ERR]
        .into_iter()
        .filter_map(OnceLock::get)
        .map(Stream::dropped_lines)
        .sum()
}

/// Every [`DROPPED_REPORT_EVERY`], says in the log how many lines were dropped since the
/// last time, if any, and adds them to `lemonade_log_lines_dropped_total`. Runs for the
/// process's life.
pub fn spawn_dropped_reports() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut reported = 0;
        let mut tick = tokio::time::interval(DROPPED_REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dropped = dropped_lines();
            if dropped > reported {
                let new = dropped - reported;
                metrics::counter!("lemonade_log_lines_dropped_total").increment(new);
                tracing::warn!(
                    dropped = new,
                    "{new} log lines dropped in the last {} s: nobody read this process's output fast enough",
                    DROPPED_REPORT_EVERY.as_secs()
                );
                reported = dropped;
            }
        }
    })
}

/// The writer thread's end of a stream: a write that would block (a stream someone set
/// non-blocking) skips the line and counts it; any other failed write (EPIPE: the reader
/// is gone) closes the stream for good, and later lines are let go unwritten. It never
/// reports an error, so nothing upstream retries or stops.
struct Lenient<W> {
    sink: W,
    closed: bool,
    skipped: Arc<AtomicU64>,
}

impl<W: Write> Lenient<W> {
    fn new(sink: W, skipped: Arc<AtomicU64>) -> Self {
        Lenient {
            sink,
            closed: false,
            skipped,
        }
    }
}

impl<W: Write> Write for Lenient<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.closed {
            match self.sink.write_all(buf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => self.closed = true,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.closed && self.sink.flush().is_err() {
            self.closed = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink that records what it is given and fails as told.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        fail: Arc<Mutex<Option<std::io::ErrorKind>>>,
        attempts: Arc<AtomicU64>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            if let Some(kind) = *self.fail.lock().unwrap() {
                return Err(kind.into());
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stream_whose_reader_is_gone_is_written_no_more_and_never_fails_the_writer() {
        let sink = Sink::default();
        let skipped = Arc::new(AtomicU64::new(0));
        let mut lenient = Lenient::new(sink.clone(), Arc::clone(&skipped));
        lenient.write_all(b"one\n").unwrap();
        *sink.fail.lock().unwrap() = Some(std::io::ErrorKind::BrokenPipe);
        lenient.write_all(b"two\n").unwrap();
        *sink.fail.lock().unwrap() = None;
        lenient.write_all(b"three\n").unwrap();
        lenient.flush().unwrap();
        assert_eq!(*sink.written.lock().unwrap(), b"one\n");
        assert_eq!(sink.attempts.load(Ordering::Relaxed), 2, "it kept writing after EPIPE");
        assert_eq!(skipped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_write_that_would_block_skips_the_line_and_counts_it() {
        let sink = Sink::default();
        let skipped = Arc::new(AtomicU64::new(0));
        let mut lenient = Lenient::new(sink.clone(), Arc::clone(&skipped));
        *sink.fail.lock().unwrap() = Some(std::io::ErrorKind::WouldBlock);
        lenient.write_all(b"lost\n").unwrap();
        *sink.fail.lock().unwrap() = None;
        lenient.write_all(b"kept\n").unwrap();
        assert_eq!(*sink.written.lock().unwrap(), b"kept\n");
        assert_eq!(skipped.load(Ordering::Relaxed), 1);
    }

    /// A sink that blocks until told to go on, as a pipe nobody reads does.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_for_a_reader_that_does_not_read_are_dropped_and_counted_without_waiting() {
        let (go_on, waiting) = std::sync::mpsc::channel();
        let (stream, guard) = Stream::open(Stuck(waiting), "test");
        let lines = QUEUED_LINES_MAX as u64 + 100;
        // Returns although the sink never finishes a write: nothing waits for the reader.
        for n in 0..lines {
            stream.line(&format!("line {n}"));
        }
        // The queue holds QUEUED_LINES_MAX; the writer thread may hold one more.
        let dropped = stream.dropped_lines();
        assert!((99..=100).contains(&dropped), "{dropped} dropped");
        drop(go_on);
        drop(guard);
    }
}
