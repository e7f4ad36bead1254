#!/usr/bin/perl
# A real SMSC for the SMS system tests: SMPP 3.4 on Net::SMPP (Debian libnet-smpp-perl), listening in async mode.
#
#   perl tests/system/smsc_peer.pl --port P --log FILE [options]
#
# Accepts bind_transceiver from system_id "sav" (--system-id) with password --password (default "secret"):
# a wrong password gets bind status 0x0E, a wrong system_id 0x0F, another bind while bound 0x05; bind_transmitter
# and bind_receiver get 0x0D (the client must bind as a transceiver). Answers enquire_link and unbind, reads
# deliver_sm_resp; a submit_sm before the bind gets 0x04; an unknown command a generic_nack 0x03.
# Every submit_sm_resp carries a message id from a counter that starts at 6699 (0x1A2B), written --id-format hex
# (default, upper case: "1A2B") or dec ("6699").
#
# FILE gets one JSON line per PDU received ("dir":"in") and sent ("dir":"out"):
#   {"t": epoch s, "dir", "conn": n, "cmd", "seq", "status", ...}
# a submit_sm adds source_addr, dest_addr, dest_addr_ton, dest_addr_npi, esm_class, data_coding,
# registered_delivery, short_message_hex, n (the how-many-th submit_sm this peer received, from 1) and, when it
# carries TLVs, tlv_tags; a submit_sm_resp adds message_id (empty on an error) and for (the n of its submit_sm);
# a deliver_sm we send adds kind ("receipt" or "mo"), message_id / text_id, source_addr, dest_addr, esm_class,
# short_message; a deliver_sm_resp adds for_kind and message_id. Other lines: {"event": "listening" | "connect" |
# "close" | "drop" | "crash" | "exit", ...}, and {"max_outstanding": n} at exit with --window-log.
#
# Options (all combinable):
#   --throttle N         answer 0x58 ESME_RTHROTTLED to the first N submit_sm (then normal)
#   --fail-dest NUM      answer 0x0B ESME_RINVDSTADR to every submit_sm to NUM (a leading + is ignored); repeatable
#   --delay-ms N         wait N ms before each submit_sm_resp (reading on meanwhile: the client's window shows)
#   --drop-after N       close the connection after the N-th submit_sm, before answering it (once); the answers
#                        still pending on that connection are lost with it. The close is orderly (our side shut
#                        down at once, FIN after what was already sent, so every answer sent before reaches the
#                        client; what the client still sends is logged with "ignored": 1 and not answered, but
#                        for deliver_sm_resp), and the socket is closed at the client's EOF (3 s at most)
#   --refuse-binds N     after that drop, answer the next N binds 0x0D ESME_RBINDFAIL (the SMSC stays away a while)
#   --crash-after N      once the N-th submit_sm is answered (its receipt sent too), reset every connection
#                        (SO_LINGER 0: the client gets an RST) and exit at once with status 3, as an SMSC that dies
#   --receipts           after each OK submit_sm_resp, a delivery receipt deliver_sm (esm_class 0x04) with TLVs
#                        receipted_message_id (0x001E) and message_state (0x0427 = 2 DELIVERED) and the text
#                        "id:<ID> sub:001 dlvrd:001 submit date:2611301200 done date:2611301200 stat:DELIVRD err:000 text:"
#   --receipt-first      send the receipt BEFORE the submit_sm_resp
#   --receipt-text-only  receipts without TLVs, the id in the text in decimal with leading zeros ("0000006699")
#                        whatever --id-format says
#   --mo-stop PHONE      once bound, a deliver_sm (esm_class 0) from PHONE with short_message "STOP"; sent again
#                        at the next bind until a deliver_sm_resp comes back; repeatable
#   --window-log         write {"max_outstanding": n} at exit: the most submit_sm received on one connection and
#                        not answered yet
#   --first-id N         the first message id (default 6699): a test starting several peers gives each its own
#                        range, as a real SMSC never reuses an id within days
#   --enquire-ms N       send our own enquire_link every N ms while bound (the client must answer it)
# Like a real SMSC, a receipt (or MO) whose deliver_sm_resp never came because the connection closed is sent
# again after the next successful bind (logged with "redelivery": 1).
# SIGTERM or SIGINT: clean exit (the max_outstanding line written), status 0.
use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use IO::Select;
use JSON::PP;
use Net::SMPP;
use Scalar::Util qw(refaddr);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time);

my %o = (password => 'secret', 'system-id' => 'sav', 'id-format' => 'hex', throttle => 0, 'delay-ms' => 0,
         'drop-after' => 0, 'refuse-binds' => 0, 'crash-after' => 0, 'fail-dest' => [], 'mo-stop' => [],
         host => '127.0.0.1');
GetOptions(\%o, 'port=i', 'log=s', 'host=s', 'password=s', 'system-id=s', 'id-format=s', 'throttle=i',
           'fail-dest=s@', 'delay-ms=i', 'drop-after=i', 'refuse-binds=i', 'crash-after=i', 'receipts',
           'receipt-first', 'receipt-text-only',
           'mo-stop=s@', 'window-log', 'first-id=i', 'enquire-ms=i')
    or die "usage: $0 --port P --log FILE [options] (see the header of this file)\n";
die "$0: --port and --log are required\n" unless $o{port} && $o{log};
die "$0: --id-format must be hex or dec\n" unless $o{'id-format'} =~ /^(hex|dec)$/;
# --receipt-first and --receipt-text-only are kinds of receipts.
$o{receipts} = 1 if $o{'receipt-first'} || $o{'receipt-text-only'};

use constant {
    ESME_ROK => 0x00, ESME_RINVCMDID => 0x03, ESME_RINVBNDSTS => 0x04, ESME_RALYBND => 0x05,
    ESME_RINVDSTADR => 0x0B, ESME_RBINDFAIL => 0x0D, ESME_RINVPASWD => 0x0E, ESME_RINVSYSID => 0x0F,
    ESME_RTHROTTLED => 0x58,
};

open(my $LOG, '>>', $o{log}) or die "$0: cannot open $o{log}: $!\n";
$LOG->autoflush(1);
my $json = JSON::PP->new->canonical->utf8;

sub logj {
    my %h = @_;
    $h{t} = 0 + sprintf('%.6f', time);
    print $LOG $json->encode(\%h), "\n";
}

sub norm { my $n = shift // ''; $n =~ s/^\+//; return $n }
my %fail_dest = map { norm($_) => 1 } @{$o{'fail-dest'}};

my $listen = Net::SMPP->new_listen($o{host}, port => $o{port}, async => 1, system_id => 'smsc_peer',
                                   listen => 16)
    or die "$0: cannot listen on $o{host}:$o{port}: $!\n";
my $sel = IO::Select->new($listen);

my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
$SIG{PIPE} = 'IGNORE';

my %conns;            # refaddr -> {sock, id, bound, outstanding, out_seq => {seq -> what we sent}}
my $nconn = 0;
my $nsubmit = 0;      # submit_sm received, all connections
my $throttle_left = $o{throttle};
my $dropped = 0;
my $binds_refused = 0;
my $next_id = $o{'first-id'} // 6699;
my $max_outstanding = 0;
my @pending;          # submit_sm_resp to send: {c, due, seq, status, id, num, src, dst}
my %mo_acked;         # phone -> 1 once its STOP was acknowledged
my @redeliver;        # receipts sent on a connection that closed before their deliver_sm_resp

logj(event => 'listening', port => $o{port}, pid => $$, options => {map { $_ => $o{$_} } grep { $_ ne 'log' } keys %o});

sub close_conn {
    my ($c, $why) = @_;
    return if $c->{closed};
    $c->{closed} = 1;
    my @lost = map { $_->{seq} } grep { $_->{c} == $c } @pending;
    for my $seq (sort { $a <=> $b } keys %{$c->{out_seq}}) {
        my $w = $c->{out_seq}{$seq};
        push @redeliver, $w->{p} if $w->{kind} eq 'receipt';
    }
    @pending = grep { $_->{c} != $c } @pending;
    $sel->remove($c->{sock});
    close($c->{sock});
    delete $conns{refaddr($c->{sock})};
    logj(event => 'close', conn => $c->{id}, why => $why, unanswered_seqs => \@lost);
    flush_redeliver($_) for grep { $_->{bound} && !$_->{closed} } values %conns;
}

# Sends again the receipts whose connection closed before their deliver_sm_resp, on a bound connection.
sub flush_redeliver {
    my $c = shift;
    return if $stop || !@redeliver;
    my @again = @redeliver;
    @redeliver = ();
    send_receipt($c, $_, 1) for @again;
}

sub fmt_id { my $n = shift; return $o{'id-format'} eq 'hex' ? sprintf('%X', $n) : sprintf('%d', $n) }

sub send_receipt {
    my ($c, $p, $again) = @_;
    my $text_id = $o{'receipt-text-only'} ? sprintf('%010d', $p->{num_id}) : $p->{id};
    my $text = "id:$text_id sub:001 dlvrd:001 submit date:2611301200 done date:2611301200 stat:DELIVRD err:000 text:";
    my @tlv = $o{'receipt-text-only'} ? ()
        : (receipted_message_id => $p->{id} . "\0", message_state => pack('C', 2));
    my $seq = $c->{sock}->deliver_sm(source_addr_ton => 1, source_addr_npi => 1, source_addr => norm($p->{dst}),
                                     dest_addr_ton => 5, dest_addr_npi => 0, destination_addr => $p->{src},
                                     esm_class => 0x04, data_coding => 0, short_message => $text, @tlv);
    $c->{out_seq}{$seq} = {kind => 'receipt', message_id => $p->{id}, p => {%$p, c => undef}};
    logj(dir => 'out', conn => $c->{id}, cmd => 'deliver_sm', seq => $seq, status => 0, kind => 'receipt',
         redelivery => $again ? 1 : 0,
         message_id => $p->{id}, text_id => $text_id, source_addr => norm($p->{dst}), dest_addr => $p->{src},
         esm_class => 0x04, tlvs => $o{'receipt-text-only'} ? 0 : 1, for => $p->{num}, short_message => $text);
}

sub send_mo_stops {
    my $c = shift;
    for my $phone (@{$o{'mo-stop'}}) {
        next if $mo_acked{$phone};
        my $ton = $phone =~ /^\+/ ? 1 : ($phone =~ /^0/ ? 2 : 1);
        my $seq = $c->{sock}->deliver_sm(source_addr_ton => $ton, source_addr_npi => 1, source_addr => $phone,
                                         dest_addr_ton => 5, dest_addr_npi => 0, destination_addr => 'SAV',
                                         esm_class => 0x00, data_coding => 0, short_message => 'STOP');
        $c->{out_seq}{$seq} = {kind => 'mo', phone => $phone};
        logj(dir => 'out', conn => $c->{id}, cmd => 'deliver_sm', seq => $seq, status => 0, kind => 'mo',
             source_addr => $phone, dest_addr => 'SAV', esm_class => 0, short_message => 'STOP');
    }
}

sub answer_submit {
    my $p = shift;
    my $c = $p->{c};
    return if $c->{closed};
    my $ok = $p->{status} == ESME_ROK;
    send_receipt($c, $p) if $ok && $o{receipts} && $o{'receipt-first'};
    if ($ok) {
        $c->{sock}->submit_sm_resp(seq => $p->{seq}, status => 0, message_id => $p->{id});
    } else {
        # SMPP 3.4 section 4.4.2: no body when command_status is not 0.
        $c->{sock}->resp_backend(Net::SMPP::CMD_submit_sm_resp, '', $c->{sock}, seq => $p->{seq},
                                 status => $p->{status});
    }
    $c->{outstanding}--;
    logj(dir => 'out', conn => $c->{id}, cmd => 'submit_sm_resp', seq => $p->{seq}, status => $p->{status},
         message_id => $ok ? $p->{id} : '', for => $p->{num}, dest_addr => $p->{dst});
    send_receipt($c, $p) if $ok && $o{receipts} && !$o{'receipt-first'};
    if ($o{'crash-after'} && $p->{num} == $o{'crash-after'}) {
        logj(event => 'crash', n => $p->{num});
        for my $x (values %conns) {
            setsockopt($x->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            close($x->{sock});
        }
        exit 3;
    }
}

sub simple_resp {
    my ($c, $method, $pdu, $name, $status) = @_;
    $c->{sock}->$method(seq => $pdu->{seq}, status => $status // 0);
    logj(dir => 'out', conn => $c->{id}, cmd => $name, seq => $pdu->{seq}, status => $status // 0);
}

# The logged fields of a submit_sm, the how-many-th n.
sub submit_fields {
    my ($pdu, $n) = @_;
    my @tlv = grep { /^\d+$/ } keys %$pdu;
    return (n => $n, source_addr => $pdu->{source_addr}, dest_addr => $pdu->{destination_addr},
            dest_addr_ton => $pdu->{dest_addr_ton}, dest_addr_npi => $pdu->{dest_addr_npi},
            source_addr_ton => $pdu->{source_addr_ton}, source_addr_npi => $pdu->{source_addr_npi},
            esm_class => $pdu->{esm_class}, data_coding => $pdu->{data_coding},
            registered_delivery => $pdu->{registered_delivery}, service_type => $pdu->{service_type},
            short_message_hex => unpack('H*', $pdu->{short_message} // ''),
            @tlv ? (tlv_tags => [map { sprintf('0x%04X', $_) } sort { $a <=> $b } @tlv]) : ());
}

sub on_pdu {
    my ($c, $pdu) = @_;
    my $cmd = $pdu->{cmd};
    my $name = $pdu->{known_pdu} ? $pdu->explain_cmd : sprintf('0x%08X', $cmd);
    my %line = (dir => 'in', conn => $c->{id}, cmd => $name, seq => $pdu->{seq}, status => $pdu->{status});
    if ($c->{dropping} && $cmd != Net::SMPP::CMD_deliver_sm_resp) {
        logj(%line, ignored => 1, $cmd == Net::SMPP::CMD_submit_sm ? submit_fields($pdu, ++$nsubmit) : ());
        return;
    }
    if ($cmd == Net::SMPP::CMD_submit_sm) {
        $nsubmit++;
        logj(%line, submit_fields($pdu, $nsubmit));
        if (!$c->{bound}) {
            $c->{sock}->resp_backend(Net::SMPP::CMD_submit_sm_resp, '', $c->{sock}, seq => $pdu->{seq},
                                     status => ESME_RINVBNDSTS);
            logj(dir => 'out', conn => $c->{id}, cmd => 'submit_sm_resp', seq => $pdu->{seq},
                 status => ESME_RINVBNDSTS, message_id => '', for => $nsubmit);
            return;
        }
        if ($o{'drop-after'} && !$dropped && $nsubmit == $o{'drop-after'}) {
            $dropped = 1;
            my @lost = map { $_->{seq} } grep { $_->{c} == $c } @pending;
            @pending = grep { $_->{c} != $c } @pending;
            logj(event => 'drop', conn => $c->{id}, n => $nsubmit, seq => $pdu->{seq}, unanswered_seqs => \@lost);
            $c->{dropping} = time;
            $c->{bound} = 0;
            shutdown($c->{sock}, 1);
            return;
        }
        my $status = ESME_ROK;
        if ($throttle_left > 0) {
            $throttle_left--;
            $status = ESME_RTHROTTLED;
        } elsif ($fail_dest{norm($pdu->{destination_addr})}) {
            $status = ESME_RINVDSTADR;
        }
        my $p = {c => $c, due => time + $o{'delay-ms'} / 1000, seq => $pdu->{seq}, status => $status,
                 num => $nsubmit, src => $pdu->{source_addr}, dst => $pdu->{destination_addr}};
        if ($status == ESME_ROK) {
            $p->{num_id} = $next_id++;
            $p->{id} = fmt_id($p->{num_id});
        }
        push @pending, $p;
        $c->{outstanding}++;
        $max_outstanding = $c->{outstanding} if $c->{outstanding} > $max_outstanding;
        answer_submit(shift @pending) if !$o{'delay-ms'} && @pending == 1;
        return;
    }
    if ($cmd == Net::SMPP::CMD_bind_transceiver || $cmd == Net::SMPP::CMD_bind_transmitter
        || $cmd == Net::SMPP::CMD_bind_receiver) {
        my $status = ESME_ROK;
        if ($c->{bound}) { $status = ESME_RALYBND }
        elsif ($cmd != Net::SMPP::CMD_bind_transceiver) { $status = ESME_RBINDFAIL }
        elsif ($dropped && $binds_refused < $o{'refuse-binds'}) { $status = ESME_RBINDFAIL; $binds_refused++ }
        elsif (($pdu->{system_id} // '') ne $o{'system-id'}) { $status = ESME_RINVSYSID }
        elsif (($pdu->{password} // '') ne $o{password}) { $status = ESME_RINVPASWD }
        logj(%line, system_id => $pdu->{system_id}, password_ok => (($pdu->{password} // '') eq $o{password}) ? 1 : 0,
             interface_version => $pdu->{interface_version}, system_type => $pdu->{system_type});
        my $method = $cmd == Net::SMPP::CMD_bind_transceiver ? 'bind_transceiver_resp'
                   : $cmd == Net::SMPP::CMD_bind_transmitter ? 'bind_transmitter_resp' : 'bind_receiver_resp';
        $c->{sock}->$method(seq => $pdu->{seq}, status => $status, system_id => 'smsc_peer');
        logj(dir => 'out', conn => $c->{id}, cmd => $method, seq => $pdu->{seq}, status => $status);
        if ($status == ESME_ROK) {
            $c->{bound} = 1;
            $c->{next_enquire} = time + $o{'enquire-ms'} / 1000 if $o{'enquire-ms'};
            send_mo_stops($c);
            flush_redeliver($c);
        }
        return;
    }
    if ($cmd == Net::SMPP::CMD_enquire_link) {
        logj(%line);
        simple_resp($c, 'enquire_link_resp', $pdu, 'enquire_link_resp');
        return;
    }
    if ($cmd == Net::SMPP::CMD_unbind) {
        logj(%line);
        simple_resp($c, 'unbind_resp', $pdu, 'unbind_resp');
        $c->{bound} = 0;
        return;
    }
    if ($cmd == Net::SMPP::CMD_deliver_sm_resp) {
        my $what = delete $c->{out_seq}{$pdu->{seq}} // {kind => 'unknown'};
        $mo_acked{$what->{phone}} = 1 if $what->{kind} eq 'mo' && $pdu->{status} == 0;
        logj(%line, for_kind => $what->{kind}, message_id => $what->{message_id} // '', phone => $what->{phone} // '');
        return;
    }
    if ($cmd & 0x80000000) {  # any other response (enquire_link_resp, generic_nack...): log only
        logj(%line);
        return;
    }
    logj(%line);
    $c->{sock}->generic_nack(seq => $pdu->{seq}, status => ESME_RINVCMDID);
    logj(dir => 'out', conn => $c->{id}, cmd => 'generic_nack', seq => $pdu->{seq}, status => ESME_RINVCMDID);
}

while (!$stop) {
    my $now = time;
    while (@pending && $pending[0]{due} <= $now) {
        answer_submit(shift @pending);
    }
    for my $c (grep { $_->{dropping} && $now - $_->{dropping} > 3 } values %conns) {
        close_conn($c, 'drop-after (no EOF from the client within 3 s)');
    }
    if ($o{'enquire-ms'}) {
        for my $c (values %conns) {
            next unless $c->{bound} && $c->{next_enquire} && $c->{next_enquire} <= $now;
            my $seq = $c->{sock}->enquire_link();
            logj(dir => 'out', conn => $c->{id}, cmd => 'enquire_link', seq => $seq, status => 0);
            $c->{next_enquire} = $now + $o{'enquire-ms'} / 1000;
        }
    }
    my $timeout = $o{'enquire-ms'} && $o{'enquire-ms'} < 200 ? $o{'enquire-ms'} / 1000 : 0.2;
    if (@pending) {
        my $d = $pending[0]{due} - time;
        $timeout = $d < 0 ? 0 : ($d < $timeout ? $d : $timeout);
    }
    my @ready = $sel->can_read($timeout);
    for my $fh (@ready) {
        last if $stop;
        if ($fh == $listen) {
            my $s = $listen->accept or next;
            my $c = {sock => $s, id => ++$nconn, bound => 0, outstanding => 0, out_seq => {}};
            $conns{refaddr($s)} = $c;
            $sel->add($s);
            logj(event => 'connect', conn => $c->{id}, peer => $s->peerhost . ':' . $s->peerport);
            next;
        }
        my $c = $conns{refaddr($fh)} or next;
        my $pdu = $fh->read_pdu;
        if (!$pdu) {
            close_conn($c, 'eof or read error: ' . (${*$fh}{smpperror} // ''));
            next;
        }
        on_pdu($c, $pdu);
    }
}

logj(max_outstanding => $max_outstanding) if $o{'window-log'};
logj(event => 'exit', submits => $nsubmit, max_outstanding => $max_outstanding, pending => scalar(@pending));
close_conn($_, 'exit') for values %conns;
close($listen);
close($LOG);
exit 0;
