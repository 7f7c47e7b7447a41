//! The per-syscall counts and their `strace -c` style table.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// What we know about one system call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallStats {
    pub calls: u64,
    pub errors: u64,
    /// Time between the entry stop and the exit stop, summed.
    pub time: Duration,
}

/// Counts per syscall name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub syscalls: BTreeMap<String, SyscallStats>,
}

/// Linux returns -4095..=-1 from a failed system call (the negated errno).
pub fn is_error(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

/// The kernel's name for x86-64 syscall number `nr`.
pub fn syscall_name(nr: u64) -> String {
    match syscalls::Sysno::new(nr as usize) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr:#x}"),
    }
}

impl Census {
    /// Records one completed system call.
    pub fn record(&mut self, nr: u64, ret: i64, time: Duration) {
        let entry = self.syscalls.entry(syscall_name(nr)).or_default();
        entry.calls += 1;
        if is_error(ret) {
            entry.errors += 1;
        }
        entry.time += time;
    }

    pub fn total_calls(&self) -> u64 {
        self.syscalls.values().map(|s| s.calls).sum()
    }

    /// The table `strace -c` prints: most time first, then most calls, then name.
    pub fn render(&self) -> String {
        let total_time: Duration = self.syscalls.values().map(|s| s.time).sum();
        let total_errors: u64 = self.syscalls.values().map(|s| s.errors).sum();
        let mut rows: Vec<_> = self.syscalls.iter().collect();
        rows.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.1.calls.cmp(&a.1.calls)).then(a.0.cmp(b.0)));
        let rule = "------ ----------- ----------- --------- --------- ----------------";
        let mut out = String::new();
        writeln!(out, "% time     seconds  usecs/call     calls    errors syscall").unwrap();
        writeln!(out, "{rule}").unwrap();
        for (name, s) in rows {
            row(&mut out, percent(s.time, total_time), s.time, s.calls, s.errors, name);
        }
        writeln!(out, "{rule}").unwrap();
        row(&mut out, 100.0, total_time, self.total_calls(), total_errors, "total");
        out
    }
}

fn percent(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() { 0.0 } else { 100.0 * part.as_secs_f64() / whole.as_secs_f64() }
}

fn row(out: &mut String, pct: f64, time: Duration, calls: u64, errors: u64, name: &str) {
    let per_call = (time.as_micros() as u64).checked_div(calls).unwrap_or(0);
    let errors = if errors == 0 { String::new() } else { errors.to_string() };
    writeln!(out, "{pct:6.2} {:11.6} {per_call:11} {calls:9} {errors:>9} {name}", time.as_secs_f64()).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_the_negated_errno_range() {
        assert!(is_error(-2) && is_error(-4095));
        assert!(!is_error(0) && !is_error(3) && !is_error(-4096));
    }

    #[test]
    fn table_has_strace_columns_and_a_total() {
        let mut c = Census::default();
        c.record(0, 5, Duration::from_micros(30)); // read
        c.record(2, -2, Duration::from_micros(10)); // open, ENOENT
        c.record(2, 3, Duration::from_micros(10));
        let table = c.render();
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[2].ends_with(" read") && lines[2].contains("        1           read"));
        assert!(lines[3].ends_with("         2         1 open"), "{table}");
        assert!(lines[5].starts_with("100.00") && lines[5].ends_with("         3         1 total"));
    }
}
