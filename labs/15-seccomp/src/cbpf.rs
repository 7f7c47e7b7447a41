//! A classic-BPF interpreter for seccomp filters: what the kernel computes
//! for one call, computed again by the grader from the filter it holds.

use libc::sock_filter;

/// Runs `prog` on the `seccomp_data` of a call numbered `nr` from
/// architecture `arch` (instruction pointer and arguments zero) and returns
/// the filter's answer. Every instruction a seccomp filter may use is
/// understood; a program the kernel would have refused is an error.
pub fn evaluate(prog: &[sock_filter], nr: u32, arch: u32) -> Result<u32, String> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    let word = |k: u32| -> Result<u32, String> {
        let at = k as usize;
        if !at.is_multiple_of(4) || at + 4 > data.len() {
            return Err(format!("a load from offset {k} of seccomp_data"));
        }
        Ok(u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]))
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    while let Some(ins) = prog.get(pc) {
        let (code, k) = (u32::from(ins.code), ins.k);
        let slot = || mem.get(k as usize).copied().ok_or_else(|| format!("scratch slot {k}"));
        pc += 1;
        match code & 0x07 {
            // BPF_LD and BPF_LDX: by mode.
            0x00 | 0x01 => {
                let v = match code & 0xe0 {
                    0x00 => k,                 // BPF_IMM
                    0x20 => word(k)?,          // BPF_ABS
                    0x60 => slot()?,           // BPF_MEM
                    0x80 => data.len() as u32, // BPF_LEN
                    _ => return Err(format!("load {code:#06x}")),
                };
                if code & 0x07 == 0x00 { a = v } else { x = v }
            }
            // BPF_ST, BPF_STX.
            0x02 | 0x03 => {
                let v = if code & 0x07 == 0x02 { a } else { x };
                *mem.get_mut(k as usize).ok_or_else(|| format!("scratch slot {k}"))? = v;
            }
            // BPF_ALU.
            0x04 => {
                let src = if code & 0x08 != 0 { x } else { k };
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a.checked_div(src).ok_or("division by zero")?,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(src).ok_or("modulo by zero")?,
                    0xa0 => a ^ src,
                    _ => return Err(format!("alu {code:#06x}")),
                };
            }
            // BPF_JMP.
            0x05 => {
                let src = if code & 0x08 != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return Err(format!("jump {code:#06x}")),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            // BPF_RET: the constant or A.
            0x06 => return Ok(if code & 0x18 == 0x10 { a } else { k }),
            // BPF_MISC: TAX, TXA.
            _ => {
                if code & 0xf8 == 0x80 {
                    a = x
                } else {
                    x = a
                }
            }
        }
    }
    Err("the program runs off its end".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, jump, stmt};
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};

    /// The shape of the reference: arch check, one denied number.
    fn filter(deny: u32) -> Vec<sock_filter> {
        vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, 4),
            jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
            stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, deny, 0, 1),
            stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ERRNO | 1),
            stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        ]
    }

    #[test]
    fn answers_like_the_kernel() {
        let f = filter(83);
        assert_eq!(evaluate(&f, 83, AUDIT_ARCH_X86_64), Ok(libc::SECCOMP_RET_ERRNO | 1));
        assert_eq!(evaluate(&f, 39, AUDIT_ARCH_X86_64), Ok(libc::SECCOMP_RET_ALLOW));
        assert_eq!(evaluate(&f, 39, AUDIT_ARCH_I386), Ok(libc::SECCOMP_RET_KILL_PROCESS));
    }

    #[test]
    fn a_broken_program_is_an_error() {
        let mut f = filter(83);
        f.pop();
        assert!(evaluate(&f, 1, AUDIT_ARCH_X86_64).is_err());
        assert!(evaluate(&[stmt(BPF_LD | BPF_W | BPF_ABS, 64)], 1, AUDIT_ARCH_X86_64).is_err());
    }
}
