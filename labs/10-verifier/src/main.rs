//! `verifier-lab PROGRAM PIN_DIR [--port N] [--byte N]`: loads one of the
//! lab's four XDP programs and pins it, with its maps, under PIN_DIR, so
//! that the grader can run it on frames of its own (BPF_PROG_TEST_RUN)
//! after this process has exited.
//!
//! When the verifier rejects the program, libbpf prints the verifier's log
//! on stderr, between `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG
//! --`, and `labctl` explains its decisive line.

mod load;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let request = load::Request::parse(&args)?;
    load::load_and_pin(&request)
}
