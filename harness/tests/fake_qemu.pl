#!/usr/bin/perl
# A stand-in for qemu-system-x86_64 that plays a scenario instead of booting
# a kernel, so that tests can drive labctl's VM handling through boot
# failures, hangs, deaths, floods and panics in seconds. Tests copy it into
# a temporary directory as `qemu-system-x86_64` and put a file beside it,
# `scenario`, with one action per line:
#
#   console TEXT        a line on the console (QEMU's stdout)
#   stderr TEXT         a line on QEMU's stderr
#   connect             connect to labctl's events socket (from -chardev)
#   event JSON          one line on the events socket
#   sleep SECONDS
#   flood SECONDS       console lines as fast as possible for SECONDS
#   flood_events SECONDS STEP   output events of STEP, as fast as possible
#   hang                sleep for ever, ignoring SIGTERM, SIGINT and SIGHUP
#   exit CODE
#
# Its pid and arguments are appended to `calls` beside it. `--version`
# answers as QEMU does (labctl names snapshots by it) and plays nothing;
# a run with `-incoming` (a restore) plays the scenario as a boot would.
use strict;
use warnings;
use File::Basename qw(dirname);
use IO::Socket::UNIX;
use IO::Handle;
use Time::HiRes qw(time sleep);

if (@ARGV == 1 && $ARGV[0] eq '--version') {
    print "QEMU emulator version 7.2.0 (fake)\n";
    exit(0);
}

my $dir = dirname($0);
STDOUT->autoflush(1);
STDERR->autoflush(1);

open(my $calls, '>>', "$dir/calls") or die "fake qemu: $dir/calls: $!";
print $calls "$$ @ARGV\n";
close($calls);

my $socket_path;
for my $arg (@ARGV) {
    $socket_path = $1 if $arg =~ /^socket,.*path=(.*)$/;
}
my $events;

open(my $scenario, '<', "$dir/scenario") or die "fake qemu: $dir/scenario: $!";
while (my $line = <$scenario>) {
    chomp $line;
    next if $line eq '' || $line =~ /^#/;
    my ($action, $rest) = split(/ /, $line, 2);
    $rest //= '';
    if ($action eq 'console') {
        print "$rest\n";
    } elsif ($action eq 'stderr') {
        print STDERR "$rest\n";
    } elsif ($action eq 'connect') {
        $events = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $socket_path)
            or die "fake qemu: connecting to $socket_path: $!";
        $events->autoflush(1);
    } elsif ($action eq 'event') {
        print $events "$rest\n";
    } elsif ($action eq 'sleep') {
        sleep($rest);
    } elsif ($action eq 'flood') {
        my $until = time() + $rest;
        my $n = 0;
        while (time() < $until) {
            print "[ $n ] flood flood flood flood flood flood flood flood flood flood flood\n" for 1 .. 100;
            $n++;
        }
    } elsif ($action eq 'flood_events') {
        my ($seconds, $step) = split(/ /, $rest, 2);
        my $until = time() + $seconds;
        my $data = 'y' x 1000;
        while (time() < $until) {
            print $events "{\"event\":\"output\",\"step\":\"$step\",\"stream\":\"stdout\",\"data\":\"$data\"}\n"
                for 1 .. 100;
        }
    } elsif ($action eq 'hang') {
        $SIG{$_} = 'IGNORE' for qw(TERM INT HUP);
        sleep(3600) while 1;
    } elsif ($action eq 'exit') {
        exit($rest);
    } else {
        die "fake qemu: unknown action $action";
    }
}
exit(0);
