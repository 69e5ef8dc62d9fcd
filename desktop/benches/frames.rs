//! Frame times of the real views, headless: each frame runs the app's UI code and egui's
//! tessellation (everything the CPU does for a frame before the GPU driver), on a made-up floor
//! where 1% of the agents change state ten times a second (every 6th frame at 60 fps, as the server ticks every 100 ms).
//!
//! `cargo bench -p monti-desktop --bench frames [-- AGENTS...]` prints p50 / p99 / max per view.

use std::time::{Duration, Instant};

use monti_client::connection::now_ms;
use monti_desktop::App;
use monti_desktop::net::{Net, lock};
use monti_desktop::sample::{self, Rng};
use monti_desktop::settings::{Settings, ViewKind};

const WARM_UP: usize = 30;
/// Frames measured per view; `MONTI_BENCH_FRAMES` sets fewer for a smoke run.
fn frames() -> usize {
    std::env::var("MONTI_BENCH_FRAMES")
        .ok()
        .and_then(|frames| frames.parse().ok())
        .unwrap_or(600)
}
const TICK_EVERY: usize = 6;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn bench(agents: u32, view: ViewKind) {
    // Sixty teams at four sites, as a large call center has (the matrix is 60 x 4).
    let floor = sample::floor_with_teams(agents, 60, 9, now_ms());
    let session = sample::live_session(floor, now_ms());
    let shared = session.floor.clone();
    let (net, _commands) = Net::detached(session);
    let settings = Settings {
        view,
        ..Settings::default()
    };
    let mut app = App::new(settings, net);
    let ctx = egui::Context::default();
    app.setup(&ctx);
    let mut rng = Rng::new(1);
    let frames = frames();
    let mut times = Vec::with_capacity(frames);
    let started = Instant::now();
    for frame in 0..WARM_UP + frames {
        if frame % TICK_EVERY == 0 {
            sample::tick(&mut lock(&shared), &mut rng, agents / 100, now_ms());
        }
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1920.0, 1080.0),
            )),
            time: Some(started.elapsed().as_secs_f64()),
            ..Default::default()
        };
        let begin = Instant::now();
        let mut output = ctx.run_ui(input, |ui| app.show(ui));
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        let took = begin.elapsed();
        // There is no renderer to upload the font atlas to.
        output.textures_delta.clear();
        std::hint::black_box(primitives);
        if frame >= WARM_UP {
            times.push(took);
        }
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    times.sort();
    println!(
        "{agents:>7} agents  {:<7} mean {:>6.2} ms  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        view.label(),
        ms(mean),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    );
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![2_000, 20_000]
    } else {
        sizes
    };
    println!(
        "frame CPU time (UI + tessellation), 1920x1080, {} frames, 1% of agents change every {TICK_EVERY} frames",
        frames()
    );
    for agents in sizes {
        for view in ViewKind::ALL {
            bench(agents, view);
        }
    }
}
