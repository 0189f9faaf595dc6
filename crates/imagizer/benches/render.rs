//! Rendering throughput: PNGs per second on one core, for a three-word phrase.
//!
//! `cargo bench -p imagizer --bench render`. Criterion's figures, then a summary line with
//! the rate per core (the renderer is single-threaded per job).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use imagizer::render::Renderer;

const PHRASE: &str = "Фигосипед на Хреначечной";

fn render(c: &mut Criterion) {
    let renderer = Renderer::new();
    c.bench_function("render three words (layout + raster + PNG)", |b| {
        b.iter(|| renderer.render(black_box(PHRASE)).unwrap());
    });
    c.bench_function("draw three words (layout + raster, no PNG)", |b| {
        b.iter(|| renderer.draw(black_box(PHRASE)).unwrap());
    });
}

/// Median of several one-second runs, as renders per second on this core.
fn summary() {
    let renderer = Renderer::new();
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let mut renders = 0u32;
            while started.elapsed() < Duration::from_secs(1) {
                black_box(renderer.render(black_box(PHRASE)).unwrap());
                renders += 1;
            }
            f64::from(renders) / started.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let png = renderer.render(PHRASE).unwrap();
    println!(
        "\nrender summary: {:.0} PNGs/s on one core (median of 5 runs; target ≥ 200), {} bytes each",
        rates[2],
        png.len()
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    render(&mut criterion);
    criterion.final_summary();
    summary();
}
