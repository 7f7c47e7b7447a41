//! `labctl shell` in a real pseudo-terminal.

mod common;

#[test]
fn shell_gives_a_root_prompt_on_the_pinned_kernel_and_exit_ends_the_vm() {
    let mut session = rexpect::session::spawn_command(common::labctl_for_pty(), Some(120_000)).unwrap();
    session.exp_string("workbook:").expect("a prompt");
    session.exp_string("# ").expect("a root prompt");
    session.send_line("id -u; uname -r").unwrap();
    // Both the guest's tty and the host's pty turn \n into \r\n.
    session.exp_regex(r"\n0\r*\n").expect("uid 0");
    session.exp_string("6.1.0-56-cloud-amd64").expect("the pinned kernel");
    session.send_line("exit").unwrap();
    session.exp_eof().expect("labctl ends when the shell exits");
}
