//! Issue 12: fuzzing on stable Rust of every parser that takes outside input. A mutational
//! fuzzer in the tests: each target starts from real inputs (seeds), mutates them at random
//! (bit flips, byte and token insertions, deletions, duplications, splices) with a seeded
//! generator, and feeds every mutant to the parser. A panic fails the test and prints the input.
//!
//! Bounded: each target runs for `GATE_FUZZ_SECONDS` (default 2 s) or `GATE_FUZZ_EXECS`
//! executions, whichever comes first, so CI stays fast; a long campaign is
//! `GATE_FUZZ_SECONDS=300 cargo test --release --test it fuzz -- --nocapture --test-threads 1`.
//! Every target prints its executions, so the figures can be reported.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime};

/// xorshift64*: deterministic per target, so a failure reproduces with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that tend to reach deep into the parsers under test.
const TOKENS: &[&[u8]] = &[
    b"{{",
    b"}}",
    b"${",
    b"}",
    b":",
    b"\n",
    b"\r\n",
    b"\r",
    b"- ",
    b"[",
    b"]",
    b"{",
    b"\"",
    b"'",
    b"\\",
    b"\0",
    b"%",
    b"ms",
    b"s",
    b"/s",
    b"<",
    b">=",
    b"p99",
    b"random_int(",
    b")",
    b",",
    b";",
    b"=",
    b"dur=",
    b"data: ",
    b"event: ",
    b"1e308",
    b"-1",
    b"NaN",
    b"inf",
    b"18446744073709551616",
    b"99999999999999999999",
    b"0",
    b"\xff",
    b"\xf0\x9f\x98",
    b"\xef\xbb\xbf",
    b"  ",
    b"&",
    b"*",
    b"!!",
    b"~",
    b"null",
    b"true",
    b"[DONE]",
    b"message_stop",
    b"content_block_delta",
    b"usage",
    b"\"type\"",
    b"GMT",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"<<: *a",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 | 3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            4 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            5 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(32)).min(v.len());
                let piece: Vec<u8> = v[start..end].to_vec();
                for _ in 0..1 + rng.below(3) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    v.truncate(at);
                    v.extend_from_slice(&other[start..]);
                }
            }
            _ => {
                let n = rng.below(8);
                for _ in 0..n {
                    v.insert(at.min(v.len()), rng.next() as u8);
                }
            }
        }
        if v.len() > 1 << 16 {
            v.truncate(1 << 16);
        }
    }
    v
}

fn budget() -> (Duration, u64) {
    let secs = std::env::var("GATE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    let execs = std::env::var("GATE_FUZZ_EXECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    (Duration::from_secs_f64(secs), execs)
}

/// Feed the seeds and their mutants to `target` until the budget is spent. Returns executions.
fn fuzz(name: &str, seeds: &[&[u8]], target: impl Fn(&[u8])) -> u64 {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    let (time, max) = budget();
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 40);
    let started = Instant::now();
    let mut corpus = seeds.clone();
    let mut execs = 0u64;
    // Quiet the default hook: a caught panic is reported below, with its input.
    while execs < max && (execs < seeds.len() as u64 || started.elapsed() < time) {
        let input = if (execs as usize) < seeds.len() {
            seeds[execs as usize].clone()
        } else {
            let base = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, base, &seeds)
        };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!(
                "fuzz target `{name}` panicked after {execs} executions: {msg}\ninput ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input)
            );
        }
        // Keep some mutants as new bases, so mutations stack up over time.
        if rng.below(16) == 0 && corpus.len() < 4096 {
            corpus.push(input);
        }
        execs += 1;
    }
    eprintln!(
        "fuzz {name}: {execs} executions in {:.1}s, no panic",
        started.elapsed().as_secs_f64()
    );
    execs
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn fuzz_durations_thresholds_templates_env() {
    let _machine = crate::common::shared();
    use gate::config::parse_threshold;
    use gate::config::template::{Template, expand_env};
    use gate::units::parse_duration;
    fuzz(
        "duration",
        &[
            b"10s",
            b"1.5m",
            b"250ms",
            b"2h",
            b"0s",
            b"1e3s",
            b"18446744073709551615s",
        ],
        |b| {
            let _ = parse_duration(&text(b));
        },
    );
    fuzz(
        "threshold",
        &[
            b"p95 < 300ms",
            b"error_rate < 1%",
            b"throughput > 50/s",
            b"ttft_p95 < 1s",
            b"tok_s > 20",
            b"p99.9 <= 2s",
            b"mean < 10ms",
        ],
        |b| {
            let _ = parse_threshold(&text(b));
        },
    );
    fuzz(
        "template",
        &[
            b"/api/v1/products/{{ random_int(1, 2000) }}",
            b"{{ uuid() }}-{{ random_choice(\"a\", \"b\") }}",
            b"{{ random_int(-5, 5) }}{{ seq() }}",
            b"plain",
        ],
        |b| {
            if let Ok(t) = Template::parse(&text(b)) {
                use rand::SeedableRng;
                let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
                let _ = t.render(&mut rng);
            }
        },
    );
    fuzz(
        "env",
        &[
            b"Bearer ${TOKEN}",
            b"${A:-default}",
            b"$${not}",
            b"${",
            b"${A:-${B}}",
        ],
        |b| {
            let _ = expand_env(&text(b), &|n| (n == "TOKEN").then(|| "t".to_string()));
        },
    );
}

#[test]
fn fuzz_scenario_yaml() {
    let _machine = crate::common::shared();
    use gate::config::{Overrides, Source, build_plan};
    let seeds: Vec<&[u8]> = vec![
        include_bytes!("../../scenarios/create-order.yml"),
        include_bytes!("../../scenarios/products-list.yml"),
        include_bytes!("../../scenarios/user-orders.yml"),
        include_bytes!("../../scenarios/llm/compare.yml"),
        include_bytes!("../../scenarios/llm/fallback.yml"),
        include_bytes!("../../scenarios/llm/ramp.yml"),
        b"name: a\nrequest: { method: GET, url: / }\nload: { users: [1, 2], step: 1s }\n",
        b"name: a\nrequest: { method: POST, url: /x, json: { a: [1, 2, { b: \"{{ random_int(1, 3) }}\" }] } }\nload: { rate: 10/s, duration: 1s }\n",
    ];
    let suite: &[u8] = include_bytes!("../../scenarios/suite.yml");
    let overrides = Overrides {
        target: Some("http://127.0.0.1:9".into()),
        ..Overrides::default()
    };
    fuzz("scenario-yaml", &seeds, |b| {
        let src = Source {
            path: "fuzz.yml".into(),
            text: text(b),
        };
        let _ = build_plan(
            "fuzz",
            None,
            std::slice::from_ref(&src),
            &overrides,
            &|_| None,
        );
    });
    fuzz("suite-yaml", &[suite], |b| {
        let suite = Source {
            path: "suite.yml".into(),
            text: text(b),
        };
        let s = Source {
            path: "s.yml".into(),
            text: "name: s\nrequest: { method: GET, url: / }\n".into(),
        };
        let _ = build_plan("fuzz", Some(&suite), &[s], &Overrides::default(), &|_| None);
    });
}

#[test]
fn fuzz_sse_and_llm_decoders() {
    let _machine = crate::common::shared();
    use gate::provider::sse::SseParser;
    use gate::provider::{Decoder, Provider, decode_json};
    let anthropic: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n: ping\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let openai: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\r\n\r\ndata: [DONE]\r\n\r\n";
    let error: &[u8] =
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n";
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        fuzz("sse+decoder", &[anthropic, openai, error], |b| {
            let mut parser = SseParser::new();
            let mut events = Vec::new();
            let mut d = Decoder::new(provider.protocol());
            // Fed in two pieces, split where the input says.
            let cut = b.first().map_or(0, |&c| c as usize % (b.len() + 1));
            for (i, piece) in [&b[..cut], &b[cut..]].into_iter().enumerate() {
                parser.feed(piece, &mut events);
                for ev in events.drain(..) {
                    d.on_event(&ev, Duration::from_millis(i as u64 + 1));
                }
            }
            let _ = d.finish();
        });
        fuzz(
            "llm-json",
            &[
                b"{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}],\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}",
                b"{\"choices\":[{\"message\":{\"content\":\"hello\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":18446744073709551615}}",
                b"{\"error\":{\"message\":\"no\"}}",
            ],
            |b| {
                let _ = decode_json(provider.protocol(), b);
            },
        );
    }
}

#[test]
fn fuzz_server_timing_and_retry_after() {
    let _machine = crate::common::shared();
    use gate::engine::tally::{Stats, parse_server_timing};
    fuzz(
        "server-timing",
        &[
            b"db;dur=12.5, cache;desc=\"hit; yes\";dur=0.3, app",
            b"db;dur=1e308, x;dur=NaN, y;dur=-1",
            b"a;dur=\"5\";desc=\"q\\\"uote\"",
        ],
        |b| {
            let s = text(b);
            let _ = parse_server_timing(&s);
            let mut st = Stats::default();
            st.add_server_timing(&s);
            st.add_server_timing(&s);
            for (_, acc) in &st.server_timing {
                assert!(acc.sum_ms.is_finite() && acc.max_ms.is_finite(), "{s:?}");
            }
        },
    );
    fuzz(
        "retry-after",
        &[
            b"12",
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
            b"1e20",
        ],
        |b| {
            if let Some(d) = gate::http_date::retry_after(&text(b), SystemTime::now()) {
                assert!(d <= gate::http_date::MAX_RETRY_AFTER);
            }
        },
    );
}

#[test]
fn fuzz_history_import_histograms_and_github_event() {
    let _machine = crate::common::shared();
    use gate::record::{decode_histogram, encode_histogram, new_histogram};
    use gate::store::Export;
    let mut h = new_histogram();
    for v in [120u64, 450, 900, 1200, 5000, 80_000] {
        h.record(v).unwrap();
    }
    let hist = encode_histogram(&h);
    fuzz("histogram-base64", &[hist.as_bytes()], |b| {
        if let Ok(h) = decode_histogram(&text(b)) {
            let _ = h.value_at_quantile(0.99);
        }
    });
    // Raw V2 bytes behind the base64, mutated directly (base64 mutations mostly fail early).
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&hist)
        .unwrap();
    fuzz("histogram-v2", &[&raw], |b| {
        let t = base64::engine::general_purpose::STANDARD.encode(b);
        if let Ok(h) = decode_histogram(&t) {
            let _ = h.value_at_quantile(0.5);
        }
    });
    let export = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/export.json"
    ))
    .unwrap_or_else(|_| minimal_export(&hist).into_bytes());
    fuzz("history-import", &[&export], |b| {
        if let Ok(e) = Export::parse("fuzz.json", &text(b)) {
            // What import would store must load back without a panic.
            let dir = tempfile::tempdir().unwrap();
            let mut store = gate::store::Store::open(&dir.path().join("h.db")).unwrap();
            if store.import(&e).is_ok() {
                for r in store.list(&gate::store::ListFilter::default()).unwrap() {
                    let _ = store.load(r.id);
                }
            }
        }
    });
    fuzz(
        "github-event",
        &[
            b"{\"pull_request\":{\"number\":42}}",
            b"{\"number\":7}",
            b"{\"pull_request\":null}",
        ],
        |b| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("event.json");
            std::fs::write(&p, b).unwrap();
            let _ = gate::publish::actions::pr_from_event(Some(&p));
        },
    );
}

fn minimal_export(hist: &str) -> String {
    format!(
        r#"{{"format":"gate-history","version":1,"exported_at":"2026-01-01T00:00:00.000Z","branch":"main","runs":[{{"version":1,"uid":"u1","gate_version":"0.1.0","started_at":"2026-01-01T00:00:00.000Z","finished_at":"2026-01-01T00:00:01.000Z","target":"http://127.0.0.1:1","suite":"s","label":null,"complete":true,"endpoints":[{{"name":"e","scenario_file":"e.yml","scenario_hash":"h","method":"GET","url":"/","load":{{"model":"closed","users":1,"rate_per_s":null,"duration_s":1.0,"warmup_s":0.0}},"requests":6,"successes":6,"failures":0,"elapsed_s":1.0,"throughput_rps":6.0,"error_rate":0.0,"latency":{{"count":6,"min_ms":0.12,"mean_ms":1.0,"max_ms":80.0,"p50_ms":0.9,"p90_ms":5.0,"p95_ms":5.0,"p99_ms":80.0,"histogram":"{hist}"}},"ttfb":{{"count":0,"min_ms":0.0,"mean_ms":0.0,"max_ms":0.0,"p50_ms":0.0,"p90_ms":0.0,"p95_ms":0.0,"p99_ms":0.0,"histogram":""}},"status_counts":{{"200":6}},"errors":{{}},"server_timing":[],"late_starts":0,"dropped_arrivals":0,"bytes_received":12}}]}}]}}"#
    )
}
