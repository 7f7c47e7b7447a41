//! The program you write, one instruction at a time: a socket filter that
//! keeps packets longer than [`THRESHOLD`] bytes and drops the rest.

use crate::insn::Insn;
use crate::insn::Reg::*;

/// Packets of this many bytes or fewer are dropped.
pub const THRESHOLD: i32 = 64;

/// `offsetof(struct __sk_buff, len)`: the packet's length is the first
/// field of the context that r1 points to.
pub const SKB_LEN: i16 = 0;

/// The filter's instructions. A socket filter returns how many bytes of the
/// packet to keep: the whole length keeps it, 0 drops it.
pub fn len_filter() -> Vec<Insn> {
    // ANCHOR: todo
    // TODO: write the filter. On entry r1 points to the packet's
    // `struct __sk_buff`; whatever is in r0 at `exit` is the result.
    //   1. Load the 32-bit `len` field at r1 + SKB_LEN into r0
    //      (Insn::ldx_mem with Size::W).
    //   2. If r0 > THRESHOLD (unsigned), jump over the next instruction
    //      (Insn::jmp_imm with JmpOp::Jgt; the offset counts the
    //      instructions to skip).
    //   3. Otherwise set r0 to 0.
    //   4. Exit.
    // For now the filter drops every packet.
    vec![Insn::mov64_imm(R0, 0), Insn::exit()]
    // ANCHOR_END: todo
}
