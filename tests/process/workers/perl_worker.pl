#!/usr/bin/env perl
# A peepsy worker in Perl with JSON::PP: one JSON message per line on stdin/stdout.
use strict;
use warnings;
use JSON::PP;

$| = 1;
my $json = JSON::PP->new->canonical;
while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $msg = $json->decode($line);
    last if $msg->{type} eq 'SHUTDOWN';
    next unless $msg->{type} eq 'REQUEST';
    my $req = $msg->{request} // $msg;
    my $reply;
    if ($req->{action} eq 'add') {
        my $sum = $req->{data}{a} + $req->{data}{b};
        $reply = {type => 'RESPONSE', id => $req->{id}, status => 200,
                  data => {sum => $sum, runtime => 'perl', pid => $$}};
    } else {
        my $error = "No handler registered for action: $req->{action}";
        $reply = {type => 'RESPONSE', id => $req->{id}, status => 404, error => $error};
    }
    print $json->encode($reply), "\n";
}
exit 0;
