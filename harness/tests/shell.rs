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

#[test]
fn shell_with_a_lab_has_its_freshly_built_programs_in_lab_bin() {
    let mut cmd = common::labctl();
    cmd.args(["shell", "3"]);
    let mut session = rexpect::session::spawn_command(cmd, Some(300_000)).unwrap();
    session.exp_string("/lab/bin: hello-world").expect("labctl names the lab's programs");
    session.exp_string("# ").expect("a root prompt");
    session.send_line("ls -l /lab/bin/hello-world && echo found-it").unwrap();
    session.exp_string("found-it").expect("the lab's program is in the guest");
    session.send_line("exit").unwrap();
    session.exp_eof().expect("labctl ends when the shell exits");
}
