//! Per-syscall counts, printed as the table `strace -c` prints.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Calls of one system call, and how many failed when that is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub errors: u64,
}

/// Counts per syscall name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub syscalls: BTreeMap<String, Counts>,
}

/// The kernel's name for x86-64 syscall number `nr`.
pub fn syscall_name(nr: u64) -> String {
    match syscalls::Sysno::new(nr as usize) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr:#x}"),
    }
}

/// Linux returns -4095..=-1 from a failed system call (the negated errno).
pub fn is_error(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

impl Census {
    /// Adds `calls` calls of syscall `nr`, `errors` of which failed.
    pub fn add(&mut self, nr: u64, calls: u64, errors: u64) {
        let entry = self.syscalls.entry(syscall_name(nr)).or_default();
        entry.calls += calls;
        entry.errors += errors;
    }

    pub fn total(&self) -> Counts {
        self.syscalls
            .values()
            .fold(Counts::default(), |sum, c| Counts { calls: sum.calls + c.calls, errors: sum.errors + c.errors })
    }

    /// The table in `strace -c`'s columns, most calls first. Neither
    /// counter times single calls, so the time columns are zero: they are
    /// there so that the table reads (and parses) like strace's.
    pub fn render(&self) -> String {
        let mut rows: Vec<_> = self.syscalls.iter().collect();
        rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(b.0)));
        let rule = "------ ----------- ----------- --------- --------- ----------------";
        let mut out = String::new();
        writeln!(out, "% time     seconds  usecs/call     calls    errors syscall").unwrap();
        writeln!(out, "{rule}").unwrap();
        for (name, counts) in rows {
            row(&mut out, *counts, name);
        }
        writeln!(out, "{rule}").unwrap();
        row(&mut out, self.total(), "total");
        out
    }
}

fn row(out: &mut String, c: Counts, name: &str) {
    let errors = if c.errors == 0 { String::new() } else { c.errors.to_string() };
    writeln!(out, "{:6.2} {:11.6} {:11} {:9} {errors:>9} {name}", 0.0, 0.0, 0, c.calls).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_by_name_and_sort_by_calls() {
        let mut c = Census::default();
        c.add(0, 5000, 0); // read
        c.add(1, 5001, 0); // write
        c.add(318, 1, 1); // getrandom, failed
        c.add(0, 1, 0);
        let table = c.render();
        let lines: Vec<_> = table.lines().collect();
        // A tie in calls goes by name.
        assert!(lines[2].ends_with("      5001           read"), "{table}");
        assert!(lines[3].ends_with("      5001           write"), "{table}");
        assert!(lines[4].ends_with("         1         1 getrandom"), "{table}");
        assert!(lines[6].ends_with("     10003         1 total"), "{table}");
    }

    #[test]
    fn errors_are_the_negated_errno_range() {
        assert!(is_error(-2) && is_error(-4095));
        assert!(!is_error(0) && !is_error(3) && !is_error(-4096));
    }
}
