//! eBPF instructions, encoded by hand.
//!
//! Every instruction is 8 bytes, `struct bpf_insn` in
//! include/uapi/linux/bpf.h:
//!
//! ```text
//!  byte 0     byte 1          bytes 2-3   bytes 4-7
//! +--------+--------+--------+-----------+----------------------+
//! | opcode | src:4  | dst:4  | offset    | immediate            |
//! +--------+--------+--------+-----------+----------------------+
//! ```
//!
//! The opcode's low three bits are its class (ALU, JMP, LDX, …). For
//! arithmetic and jumps the high four bits are the operation and bit 3 says
//! whether the second operand is the immediate (K) or the src register (X);
//! for loads and stores the other bits are the mode and the access size.
//! Multi-byte fields are little-endian on x86-64.

use std::fmt;

// ANCHOR: regs
/// The eleven registers. r0 holds return values, r1-r5 arguments (r1 is
/// the context on entry), r6-r9 survive helper calls, r10 is the read-only
/// frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}
// ANCHOR_END: regs

/// Instruction classes: the opcode's low three bits.
pub mod class {
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const JMP: u8 = 0x05;
    pub const ALU64: u8 = 0x07;
}

/// Bit 3 of an ALU or JMP opcode: the second operand is the immediate (K)
/// or the src register (X).
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
/// Mode of a load or store: memory at register + offset.
const MODE_MEM: u8 = 0x60;

/// Arithmetic operations (64-bit: class ALU64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

/// Jump conditions. Jumps compare dst with src or the immediate and, when
/// the condition holds, skip `offset` instructions forward (or back).
/// Comparisons are unsigned unless the name says S (signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JmpOp {
    /// Always.
    Ja = 0x00,
    /// ==
    Jeq = 0x10,
    /// > (unsigned)
    Jgt = 0x20,
    /// >= (unsigned)
    Jge = 0x30,
    /// dst & operand != 0
    Jset = 0x40,
    /// !=
    Jne = 0x50,
    /// > (signed)
    Jsgt = 0x60,
    /// >= (signed)
    Jsge = 0x70,
    /// < (unsigned)
    Jlt = 0xa0,
    /// <= (unsigned)
    Jle = 0xb0,
    /// < (signed)
    Jslt = 0xc0,
    /// <= (signed)
    Jsle = 0xd0,
}

const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// Access sizes of loads and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Size {
    /// Word, 4 bytes.
    W = 0x00,
    /// Half word, 2 bytes.
    H = 0x08,
    /// Byte.
    B = 0x10,
    /// Double word, 8 bytes.
    Dw = 0x18,
}

// ANCHOR: insn
/// One instruction, laid out exactly like the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low four bits, src_reg in the high four.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        Self { code, regs: (src as u8) << 4 | dst as u8, off, imm }
    }

    /// `dst = dst OP imm` on 64 bits; `Mov` gives `dst = imm`.
    pub fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Self {
        Self::new(class::ALU64 | SRC_K | op as u8, dst, Reg::R0, 0, imm)
    }

    /// `dst = dst OP src` on 64 bits; `Mov` gives `dst = src`.
    pub fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Self {
        Self::new(class::ALU64 | SRC_X | op as u8, dst, src, 0, 0)
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov64_imm(dst: Reg, imm: i32) -> Self {
        Self::alu64_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov64_reg(dst: Reg, src: Reg) -> Self {
        Self::alu64_reg(AluOp::Mov, dst, src)
    }

    /// `dst = *(size *)(src + off)`: a load from memory, zero-extended.
    pub fn ldx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(class::LDX | MODE_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`: a store to memory.
    pub fn stx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(class::STX | MODE_MEM | size as u8, dst, src, off, 0)
    }

    /// `if dst OP imm goto +off`: `off` counts instructions after this one.
    pub fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(class::JMP | SRC_K | op as u8, dst, Reg::R0, off, imm)
    }

    /// `if dst OP src goto +off`.
    pub fn jmp_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(class::JMP | SRC_X | op as u8, dst, src, off, 0)
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Self {
        Self::jmp_imm(JmpOp::Ja, Reg::R0, 0, off)
    }

    /// Call helper function number `helper` (`enum bpf_func_id`); the
    /// arguments are in r1-r5 and the result lands in r0.
    pub fn call(helper: i32) -> Self {
        Self::new(class::JMP | CALL, Reg::R0, Reg::R0, 0, helper)
    }

    /// Return r0 to the caller.
    pub fn exit() -> Self {
        Self::new(class::JMP | EXIT, Reg::R0, Reg::R0, 0, 0)
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}
// ANCHOR_END: insn

/// The bytes in hex, the way `bpftool prog dump xlated opcodes` shows them.
impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: Vec<String> = self.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        f.write_str(&hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reg::*;

    /// The bytes clang emits for the same instructions
    /// (`llvm-objdump -d` of a compiled BPF object).
    #[test]
    fn encodings_match_clang() {
        let cases: [(Insn, [u8; 8]); 8] = [
            // r0 = 0
            (Insn::mov64_imm(R0, 0), [0xb7, 0x00, 0, 0, 0, 0, 0, 0]),
            // r6 = r1
            (Insn::mov64_reg(R6, R1), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]),
            // r0 = *(u32 *)(r1 + 0)
            (Insn::ldx_mem(Size::W, R0, R1, 0), [0x61, 0x10, 0, 0, 0, 0, 0, 0]),
            // *(u64 *)(r10 - 8) = r1
            (Insn::stx_mem(Size::Dw, R10, R1, -8), [0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]),
            // if r0 > 64 goto +1
            (Insn::jmp_imm(JmpOp::Jgt, R0, 64, 1), [0x25, 0x00, 0x01, 0x00, 0x40, 0, 0, 0]),
            // r0 += -1
            (Insn::alu64_imm(AluOp::Add, R0, -1), [0x07, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            // call bpf_ktime_get_ns (5)
            (Insn::call(5), [0x85, 0x00, 0, 0, 0x05, 0, 0, 0]),
            (Insn::exit(), [0x95, 0x00, 0, 0, 0, 0, 0, 0]),
        ];
        for (insn, bytes) in cases {
            assert_eq!(insn.to_bytes(), bytes, "{insn:?}");
        }
    }

    #[test]
    fn layout_is_struct_bpf_insn() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let insn = Insn::jmp_reg(JmpOp::Jne, R2, R3, -2);
        // The struct in memory is the same as the encoded bytes.
        // SAFETY: Insn is #[repr(C)], 8 bytes, without padding.
        let raw: [u8; 8] = unsafe { std::mem::transmute(insn) };
        assert_eq!(raw, insn.to_bytes());
        assert_eq!(insn.to_string(), "5d 32 fe ff 00 00 00 00");
    }
}
