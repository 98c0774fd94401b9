//! The core alone (issue 6): verification cost per candidate against an HMAC-SHA1 floor
//! measured in the same run. Prints numbers; asserts nothing. `make bench` runs it.
//!
//! Usage: cargo run --release --example bench_core [iterations]

use hmac::{Hmac, KeyInit, Mac as _};
use pam_totp::otp::{decode_base32, find_match, Algorithm, Candidates, Mac};
use std::hint::black_box;
use std::time::Instant;

fn per_op(iters: u64, f: impl Fn(u64)) -> f64 {
    // Warm up, then take the best of five runs: the floor of the noise.
    for i in 0..iters / 10 {
        f(i);
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..iters {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let key = decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    let bytes = key.bytes().to_vec();

    // Floor 1: a full HMAC-SHA1 of an 8-byte counter, key set up every time (naive code).
    let floor_keyed = per_op(iters, |i| {
        let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(black_box(&bytes)).unwrap();
        m.update(&i.to_be_bytes());
        black_box(m.finalize().into_bytes());
    });
    // Floor 2: the same with the key schedule (inner/outer pads) computed once.
    let pre = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&bytes).unwrap();
    let floor_pre = per_op(iters, |i| {
        let mut m = pre.clone();
        m.update(&i.to_be_bytes());
        black_box(m.finalize().into_bytes());
    });
    println!("core benchmark, {iters} iterations, best of 5 (ns)");
    println!(
        "{:<44} {:>10}",
        "HMAC-SHA1, key set up per call (floor)",
        format!("{floor_keyed:.0}")
    );
    println!(
        "{:<44} {:>10}",
        "HMAC-SHA1, key set up once",
        format!("{floor_pre:.0}")
    );
    for (name, alg) in [
        ("SHA1", Algorithm::Sha1),
        ("SHA256", Algorithm::Sha256),
        ("SHA512", Algorithm::Sha512),
    ] {
        for (label, cands) in [
            (
                "TOTP window 1 (3 candidates)",
                Candidates::totp(1_000_000, 1, None),
            ),
            (
                "TOTP window 3 (7 candidates)",
                Candidates::totp(1_000_000, 3, None),
            ),
            ("HOTP look-ahead 10", Candidates::hotp(1_000, 10)),
        ] {
            if alg != Algorithm::Sha1 && label.starts_with("HOTP") {
                continue;
            }
            let n = cands.len() as f64;
            let t = per_op(iters / cands.len().max(1), |i| {
                // Key set-up is part of a verification: it happens once per login.
                let mac = Mac::new(alg, &key);
                black_box(find_match(&mac, 6, black_box(i as u32 % 1_000_000), cands));
            });
            let ratio = if alg == Algorithm::Sha1 {
                format!("{:.2}x floor", t / n / floor_keyed)
            } else {
                String::new()
            };
            if alg == Algorithm::Sha1 && label.starts_with("HOTP") {
                // Machine-readable lines for bench/run.sh's table.
                println!("R core floor ns_per_hmac {floor_keyed:.1}");
                println!("R core totp-hotp ns_per_candidate {:.1}", t / n);
            }
            println!(
                "{:<44} {:>10} {:>10.0}/cand  {ratio}",
                format!("verify {name} {label}"),
                format!("{t:.0}"),
                t / n
            );
        }
    }
}
