//! Standard output block-buffered, as C's stdio buffers it when it is not a terminal:
//! the local stack's log lines gather in memory and go out in one `write` every
//! [`FLUSH_EVERY`] (sooner once [`LIMIT`] bytes wait), instead of one `write` per line
//! (per request, for the access log). A warning or an error goes out at once, with every
//! line before it; [`flush`] writes what is left when the process ends.
//!
//! Only for the timestamped text format off a terminal ([`super::init`]): never in
//! Lambda, which may freeze the process as soon as an answer is sent.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// A buffer this full is written at once, by the thread that filled it.
pub const LIMIT: usize = 64 * 1024;

/// The lines not yet written, and the flushing thread's wake-up.
struct Pending {
    lines: Mutex<Vec<u8>>,
    /// Signalled when `lines` stops being empty.
    filled: Condvar,
    /// Held while writing, so chunks go out in the order they were taken; holds the
    /// spare buffer the pending lines are swapped into.
    output: Mutex<Vec<u8>>,
}

static PENDING: Pending = Pending {
    lines: Mutex::new(Vec::new()),
    filled: Condvar::new(),
    output: Mutex::new(Vec::new()),
};

/// A lock that a panic elsewhere does not take away: log lines are plain bytes.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes every pending line to `out` (stdout outside tests).
fn flush_to(out: &mut impl Write) {
    let mut chunk = lock(&PENDING.output);
    std::mem::swap(&mut *lock(&PENDING.lines), &mut *chunk);
    if !chunk.is_empty() {
        // Nowhere to report a failed write of the logs themselves.
        let _ = out.write_all(&chunk).and_then(|()| out.flush());
        chunk.clear();
    }
}

/// Writes every pending line to stdout now.
fn flush() {
    flush_to(&mut std::io::stdout().lock());
}

/// The thread that writes pending lines [`FLUSH_EVERY`] after the first of them came,
/// started with the first line; it sleeps while nothing is pending.
fn start_flusher() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    {
                        let lines = lock(&PENDING.lines);
                        let _filled = PENDING
                            .filled
                            .wait_while(lines, |lines| lines.is_empty())
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
        if spawned.is_err() {
            // No thread: every line is written at once instead (see `Line::write`).
            NO_FLUSHER.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

static NO_FLUSHER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Adds `bytes` to the pending lines; writes them all to `out` now when `urgent`, when
/// the buffer is full or when there is no flushing thread.
fn push(bytes: &[u8], urgent: bool, out: impl FnOnce() -> Box<dyn Write>) {
    let (was_empty, full) = {
        let mut lines = lock(&PENDING.lines);
        let was_empty = lines.is_empty();
        lines.extend_from_slice(bytes);
        (was_empty, lines.len() >= LIMIT)
    };
    if urgent || full || NO_FLUSHER.load(std::sync::atomic::Ordering::Relaxed) {
        flush_to(&mut out());
    } else if was_empty {
        PENDING.filled.notify_one();
    }
}

/// [`MakeWriter`] for [`tracing_subscriber::fmt`]: each event's line goes to the
/// buffer; one at `WARN` or above is written at once with all before it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BufferedStdout;

/// The writer of one event's line.
pub struct Line {
    urgent: bool,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        start_flusher();
        push(buf, self.urgent, || Box::new(std::io::stdout().lock()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

/// Writes what is pending when dropped: [`super::init`]'s answer, held by `main`.
#[must_use = "pending log lines are written when this is dropped: keep it until main ends"]
#[derive(Debug)]
pub struct FlushOnDrop;

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::telemetry::Captured;

    /// One test for the shared buffer: lines wait, an urgent one takes every line
    /// before it out in order, the flushing thread writes what waits, a full buffer
    /// goes at once.
    #[test]
    fn lines_wait_until_urgent_full_or_flushed_in_order() {
        let out = Captured::default();
        let sink = || -> Box<dyn Write> { Box::new(out.clone()) };
        let written = || String::from_utf8(std::mem::take(&mut *out.0.lock().unwrap())).unwrap();

        push(b"one\n", false, sink);
        push(b"two\n", false, sink);
        assert_eq!(written(), "", "info lines wait");
        push(b"warn\n", true, sink);
        assert_eq!(
            written(),
            "one\ntwo\nwarn\n",
            "an urgent line takes the rest first"
        );

        let big = vec![b'x'; LIMIT];
        push(b"head\n", false, sink);
        push(&big, false, sink);
        let all = written();
        assert!(
            all.starts_with("head\nxxx") && all.len() == LIMIT + 5,
            "a full buffer is written"
        );

        push(b"three\n", false, sink);
        flush_to(&mut out.clone());
        assert_eq!(written(), "three\n");
        flush_to(&mut out.clone());
        assert_eq!(written(), "", "nothing twice");
    }
}
