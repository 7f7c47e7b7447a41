//! The syscalls this lab filters: harmless calls that need no privilege,
//! each with its number in the x86_64 table and in the i386 table (the
//! one `int 0x80` reaches, on a 64-bit kernel built with IA32 emulation).
//!
//! They come in pairs on purpose: the i386 number of the first of a pair
//! is the x86_64 number of the second (i386 mkdir is 39, x86_64 getpid is
//! 39). A filter that reads the number without first checking which table
//! it belongs to confuses the two.

/// One syscall of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub name: &'static str,
    /// Its number for a 64-bit caller (`syscall`): what the filter denies.
    pub x86_64: u32,
    /// Its number for a 32-bit caller (`int 0x80`).
    pub i386: u32,
}

const fn sc(name: &'static str, x86_64: i64, i386: u32) -> Syscall {
    Syscall { name, x86_64: x86_64 as u32, i386 }
}

// ANCHOR: catalogue
/// Indices 0..6 are the first of each pair, 6..12 the second, in the same
/// order: `CATALOGUE[i].i386 == CATALOGUE[i + 6].x86_64`.
pub const CATALOGUE: [Syscall; 12] = [
    sc("mkdir", libc::SYS_mkdir, 39),
    sc("sync", libc::SYS_sync, 36),
    sc("kill", libc::SYS_kill, 37),
    sc("access", libc::SYS_access, 33),
    sc("dup", libc::SYS_dup, 41),
    sc("getuid", libc::SYS_getuid, 24),
    sc("getpid", libc::SYS_getpid, 20),
    sc("getitimer", libc::SYS_getitimer, 105),
    sc("alarm", libc::SYS_alarm, 27),
    sc("dup2", libc::SYS_dup2, 63),
    sc("socket", libc::SYS_socket, 359),
    sc("sched_yield", libc::SYS_sched_yield, 158),
];
// ANCHOR_END: catalogue

/// Parses a deny list of catalogue indices, separated by spaces or commas
/// (`"3 7 11"`), into the syscalls it names.
pub fn parse_deny(list: &str) -> Result<Vec<Syscall>, String> {
    let mut out: Vec<Syscall> = Vec::new();
    for word in list.split([' ', ',']).filter(|w| !w.is_empty()) {
        let i: usize = word.parse().map_err(|_| format!("{word:?} is not a catalogue index"))?;
        let s = *CATALOGUE.get(i).ok_or_else(|| format!("{i} is past the catalogue's {} entries", CATALOGUE.len()))?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pair_collides() {
        for i in 0..6 {
            assert_eq!(CATALOGUE[i].i386, CATALOGUE[i + 6].x86_64, "{}", CATALOGUE[i].name);
        }
    }

    #[test]
    fn a_deny_list_is_indices() {
        let d = parse_deny("3, 7 3").unwrap();
        assert_eq!(d.iter().map(|s| s.name).collect::<Vec<_>>(), ["access", "getitimer"]);
        assert!(parse_deny("12").is_err());
        assert!(parse_deny("mkdir").is_err());
    }
}
