#!/usr/bin/env bash
# t_real_perl — perl under hakmem gives the same results as without it.
#
# A hash/string churn script (large hashes built and emptied, string growth
# with .= and x, regex substitutions, split/join, sort) prints a checksum;
# the output with LD_PRELOAD=libhakmem.so must equal the output without it.
# The preloaded perl also checks its own /proc/self/maps for the library.
# Why: perl's allocation pattern (many small SVs, string reallocs) is a
# classic malloc workload.
. "$(dirname "$0")/lib.sh"
need_hakmem
need_cmd perl

cat >"$T/work.pl" <<'EOF'
use strict; use warnings;
use Digest::MD5 qw(md5_hex);
if (($ENV{EXPECT_HAKMEM} // '') eq '1') {
    open(my $m, '<', '/proc/self/maps') or die;
    my $maps = do { local $/; <$m> };
    die "libhakmem not mapped in the preloaded perl\n" unless $maps =~ /libhakmem/;
}
my $ctx = Digest::MD5->new;
for my $r (1 .. 5) {
    my %h;
    for my $i (1 .. 120000) {
        $h{"key$r-$i"} = ("v" x ($i % 33)) . $i;
    }
    my @k = sort keys %h;
    $ctx->add(scalar(@k), $k[0], $k[-1], $h{"key$r-777"});
    delete @h{ grep { /7$/ } @k };
    $ctx->add(scalar(keys %h));
    my $s = '';
    $s .= chr(65 + $_ % 26) x ($_ % 9) for 1 .. 100000;
    (my $t = $s) =~ s/([AEIOU])/lc($1).$1/ge;
    $ctx->add(length($s), length($t), md5_hex($t));
    my @w = split /Q/, $t;
    $ctx->add(scalar(@w), join('-', @w[0 .. 9]));
    my @n = sort { $a <=> $b } map { ($_ * 7919) % 100003 } 1 .. 100000;
    $ctx->add("@n[0..20]");
    undef %h;
}
my @big = map { [ $_, "x" x ($_ % 100) ] } 1 .. 200000;
$ctx->add(scalar(@big), $big[-1][1]);
print "checksum ", $ctx->hexdigest, "\n";
EOF

perl "$T/work.pl" >"$T/ref.out" 2>"$T/ref.err" || { cat "$T/ref.err"; fail "reference run failed"; }
EXPECT_HAKMEM=1 hak perl "$T/work.pl" >"$T/hak.out" 2>"$T/hak.err"
rc=$?
cat "$T/hak.err"
[ $rc -eq 0 ] || fail "perl under hakmem exited $rc"
check_stderr "$T/hak.err"
same_output perl "$T/ref.out" "$T/hak.out"
cat "$T/ref.out"
