//! `tc-firewall IFACE PIN_DIR --allow=PORTS --range LO HI`: loads the
//! lab's TC program with the allowed ports, pins its `counts` map under
//! PIN_DIR for the grader, and attaches the program to IFACE.
//!
//! A filter attached through netlink belongs to the interface, not to
//! this process: it keeps filtering after the loader has exited, until
//! someone removes it (`tc filter del`) or the interface goes away.

mod attach;
mod load;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let request = load::Request::parse(&args)?;
    load::load_and_attach(&request)
}
