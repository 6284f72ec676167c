#!/usr/bin/env perl
# An nginx combined log with $request_time of about SIZE_MB megabytes on stdout, for
# benches/init.sh: 15 routes with Zipf weights (1/rank), numeric ids, UUIDs, hashes, JWTs in query
# strings, emails in paths; 2000 requests a second from 00:00:00.
#
#   perl benches/init-log.pl SIZE_MB > access.log
use strict; use warnings;
my $limit = $ARGV[0] * 1024 * 1024;
srand(15);
my @routes = (
  sub { "GET /api/v1/products/" . (1 + int(rand(2000))) },
  sub { "GET /api/v1/products?page=" . (1 + int(rand(50))) . "&access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2ln" },
  sub { "GET /api/v1/users/" . (1 + int(rand(500))) . "/orders" },
  sub { sprintf("GET /api/v1/orders/%08x-%04x-%04x-%04x-%012x", rand(2**32), rand(2**16), rand(2**16), rand(2**16), rand(2**40)) },
  sub { "POST /api/v1/orders" },
  sub { "GET /api/v1/users/ann" . int(rand(1000)) . "\@example.com/profile" },
  sub { "GET /api/v1/search?q=shoes&token=eyJhbGciOiJIUzI1NiJ9.x.y" },
  sub { "GET /api/v1/categories/" . int(rand(40)) . "/products" },
  sub { sprintf("GET /assets/%08x%08x%08x%08x", rand(2**32), rand(2**32), rand(2**32), rand(2**32)) },
  sub { "GET /health" },
  sub { "GET /api/v1/reviews/" . int(rand(100000)) },
  sub { "PUT /api/v1/users/" . int(rand(500)) },
  sub { sprintf("GET /api/v1/carts/%08x-%04x-%04x-%04x-%012x/items/%d", rand(2**32), rand(2**16), rand(2**16), rand(2**16), rand(2**40), rand(2000)) },
  sub { sprintf("DELETE /api/v1/carts/%08x-%04x-%04x-%04x-%012x", rand(2**32), rand(2**16), rand(2**16), rand(2**16), rand(2**40)) },
  sub { "GET /api/v2/recommendations/" . int(rand(2000)) },
);
# Zipf weights 1/k as a lookup table of 1000 slots.
my ($h, @table) = (0);
$h += 1 / $_ for 1 .. @routes;
for my $k (1 .. @routes) { push @table, ($k - 1) x int(1000 / ($k * $h) + 0.5) }
my ($bytes, $n, $buf) = (0, 0, "");
while ($bytes < $limit) {
  my $s = int($n / 2000);   # 2000 requests a second
  my $line = sprintf(
    "198.51.100.%d - - [02/Dec/2026:%02d:%02d:%02d +0000] \"%s HTTP/1.1\" 200 %d \"https://shop.example/\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\" %.3f\n",
    $n % 250, ($s / 3600) % 24, ($s / 60) % 60, $s % 60,
    $routes[$table[int(rand(@table))]]->(), 100 + int(rand(5000)), 0.001 + rand(0.2));
  $buf .= $line; $bytes += length($line); $n++;
  if (length($buf) > 1 << 20) { print $buf; $buf = "" }
}
print $buf;
