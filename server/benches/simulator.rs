//! How fast the simulator's call-center model runs: simulated time per second of CPU, at the
//! default floor and at full scale. Prints its figures; `cargo bench -p monti-server --bench
//! simulator [-- AGENTS:QUEUES...]`.

use std::time::Instant;

use monti_server::config::SimulatorConfig;
use monti_server::sources::sim::{self, model::DAY_MS, model::Model};

/// The floors measured: `AGENTS:QUEUES` arguments, else the default floor and full scale.
fn floors() -> Vec<(u32, u32)> {
    let floors: Vec<(u32, u32)> = std::env::args()
        .skip(1)
        .filter_map(|arg| {
            let (agents, queues) = arg.split_once(':')?;
            Some((agents.parse().ok()?, queues.parse().ok()?))
        })
        .collect();
    if floors.is_empty() {
        vec![(2_000, 0), (100_000, 1_000)]
    } else {
        floors
    }
}

fn main() {
    for (agents, queues) in floors() {
        let config = SimulatorConfig {
            agents,
            queues,
            ..SimulatorConfig::default()
        };
        let started = Instant::now();
        let layout = sim::layout(&config);
        let setup = sim::setup(&config, &layout);
        let built = started.elapsed();
        // An hour's warm-up from 09:00, then half an hour measured.
        let from = DAY_MS + 10 * 3_600_000;
        let mut model = Model::new(setup, config.seed, from - 3_600_000);
        model.advance(from);
        model.reset_figures();
        let started = Instant::now();
        let mut changes = 0;
        for minute in 1..=30 {
            changes += model.advance(from + minute * 60_000).len();
        }
        let elapsed = started.elapsed();
        let total = model.total();
        println!(
            "{agents} agents, {} queues: set up in {:.2} s; 30 simulated minutes at 10:00 in \
             {:.2} s ({:.0}x real time), {changes} state changes ({:.0} per simulated second), \
             {} contacts, service level {:.1} %, abandoned {:.1} %",
            layout.queues.len(),
            built.as_secs_f64(),
            elapsed.as_secs_f64(),
            1800.0 / elapsed.as_secs_f64(),
            changes as f64 / 1800.0,
            total.offered,
            100.0 * total.service_level(),
            100.0 * total.abandon_rate(),
        );
    }
}
