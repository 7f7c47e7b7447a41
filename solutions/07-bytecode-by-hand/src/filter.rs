//! The program you write, one instruction at a time: a socket filter that
//! keeps packets longer than [`THRESHOLD`] bytes and drops the rest.

use crate::insn::Reg::*;
use crate::insn::{Insn, JmpOp, Size};

/// Packets of this many bytes or fewer are dropped.
pub const THRESHOLD: i32 = 64;

/// `offsetof(struct __sk_buff, len)`: the packet's length is the first
/// field of the context that r1 points to.
pub const SKB_LEN: i16 = 0;

/// The filter's instructions. A socket filter returns how many bytes of the
/// packet to keep: the whole length keeps it, 0 drops it.
pub fn len_filter() -> Vec<Insn> {
    // ANCHOR: solution
    vec![
        // r0 = skb->len. The verifier rewrites this context access into a
        // load from the kernel's real struct sk_buff.
        Insn::ldx_mem(Size::W, R0, R1, SKB_LEN),
        // Long enough: keep r0 as it is, the whole packet.
        Insn::jmp_imm(JmpOp::Jgt, R0, THRESHOLD, 1),
        // Too short: keep nothing.
        Insn::mov64_imm(R0, 0),
        Insn::exit(),
    ]
    // ANCHOR_END: solution
}
