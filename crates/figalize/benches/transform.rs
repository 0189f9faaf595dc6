//! Phrases per second through the transformation, over every golden phrase and word.
//!
//! Three measurements in one run: the request path (validate + transform), the transform alone,
//! and a baseline — a direct port of the original's algorithm (per-word character vectors and
//! string searches). The summary prints medians and the ratio to the baseline, because absolute
//! figures drift on shared machines.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::phrase::Phrase;
use criterion::{Criterion, Throughput};
use figalize::scheme::Schemes;
use figalize::transform::figalize;

const GROUP: &str = "figalize";

fn golden() -> Vec<(usize, &'static str)> {
    [
        include_str!("../tests/data/figalize_words.tsv"),
        include_str!("../tests/data/figalize_phrases.tsv"),
    ]
    .iter()
    .flat_map(|tsv| tsv.lines().skip(1))
    .filter(|line| !line.is_empty())
    .map(|line| {
        let mut fields = line.split('\t');
        let id = fields.next().unwrap().parse().unwrap();
        (id, fields.next().unwrap())
    })
    .collect()
}

/// The original algorithm, ported word for word.
mod original {
    pub type Scheme = Vec<(String, String)>;

    pub fn schemes() -> Vec<Scheme> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../schemes/default.json")).unwrap();
        json["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|scheme| {
                scheme["substitutions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let field = |name: &str| s[name].as_str().unwrap().to_owned();
                        (field("keys"), field("value"))
                    })
                    .collect()
            })
            .collect()
    }

    pub fn figalize(phrase: &str, scheme: &Scheme) -> String {
        phrase
            .split(' ')
            .map(|word| figalize_word(word, scheme))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn figalize_word(word: &str, scheme: &Scheme) -> String {
        let keys: String = scheme.iter().map(|(keys, _)| keys.as_str()).collect();
        let letters: Vec<char> = word.chars().collect();
        let count = letters.iter().filter(|c| keys.contains(**c)).count();
        let aya = word.ends_with("ая") || word.ends_with("ая,") || word.ends_with("ая.");
        let step = if aya || count <= 2 { 1 } else { 2 };
        let mut seen = 0;
        for (i, c) in letters.iter().enumerate() {
            if keys.contains(*c) {
                seen += 1;
                if seen == step {
                    for (keys, value) in scheme {
                        if keys.contains(*c) {
                            let rest: String = letters[i + 1..].iter().collect();
                            return format!("{value}{rest}");
                        }
                    }
                }
            }
        }
        word.to_owned()
    }
}

fn benches(c: &mut Criterion) {
    let rows = golden();
    let schemes = Schemes::builtin();
    let parsed: Vec<(usize, Phrase)> = rows
        .iter()
        .map(|&(id, phrase)| (id, Phrase::parse(phrase).unwrap()))
        .collect();
    let baseline_schemes = original::schemes();

    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("validate_and_transform", |b| {
        b.iter(|| {
            for &(id, phrase) in &rows {
                let phrase = Phrase::parse(black_box(phrase)).unwrap();
                black_box(figalize(&phrase, schemes.get(id).unwrap()));
            }
        });
    });
    group.bench_function("transform", |b| {
        b.iter(|| {
            for (id, phrase) in &parsed {
                black_box(figalize(black_box(phrase), schemes.get(*id).unwrap()));
            }
        });
    });
    group.bench_function("baseline_original_port", |b| {
        b.iter(|| {
            for &(id, phrase) in &rows {
                black_box(original::figalize(black_box(phrase), &baseline_schemes[id]));
            }
        });
    });
    group.finish();
}

/// Median nanoseconds per iteration, as criterion estimated it.
fn median_ns(dir: &Path, bench: &str) -> Option<f64> {
    let path = dir.join(GROUP).join(bench).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn summary(dir: &Path, phrases: usize) {
    let Some(baseline) = median_ns(dir, "baseline_original_port") else {
        return;
    };
    println!("\nSummary ({phrases} golden phrases per iteration, medians):");
    for bench in [
        "validate_and_transform",
        "transform",
        "baseline_original_port",
    ] {
        if let Some(ns) = median_ns(dir, bench) {
            #[allow(clippy::cast_precision_loss)]
            let per_second = phrases as f64 / (ns / 1e9);
            println!(
                "  {bench:<24} {per_second:>12.0} phrases/s   {:>5.2}× the baseline",
                baseline / ns
            );
        }
    }
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion");
    let mut criterion = Criterion::default()
        .output_directory(&dir)
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    // `cargo test --all-targets` runs each benchmark once as a smoke test, without measuring.
    if std::env::args().any(|arg| arg == "--bench") {
        summary(&dir, golden().len());
    }
}
