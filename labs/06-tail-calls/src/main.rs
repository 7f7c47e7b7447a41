//! `tail-calls`: dispatch every system call to a per-call eBPF handler
//! through a program array, until interrupted; then print what each
//! handler counted.

fn main() -> anyhow::Result<()> {
    lab06_tail_calls::run(&mut std::io::stdout().lock())
}
