//! MONTI's desktop app for floor managers: the live floor by team, by site, as a matrix and as a
//! table, with filters, search, thresholds and sign-in.
//!
//! - [`net`]: the network thread (sign-in, stream, REST); the UI never waits on it.
//! - [`admin`]: the Admin window: access, test access, devices, wallboards, audit log,
//!   feedback.
//! - [`agent`]: the agent panel: one agent's day from the stored history and the stream.
//! - [`model`]: what is shown, as plain functions of the floor and the settings.
//! - [`app`]: the eframe app that lays it out; `widgets` draws the floor's four views and
//!   `signin` the sign-in screens.
//! - [`queues`]: the queues with what needs attention, and which of that to notify.
//! - [`repaint`]: when the window redraws (news, clocks), so that it draws no more than needed.
//! - [`feedback`]: the Feedback window.
//! - [`kiosk`]: the wallboard screen: rotating fullscreen pages, its own state.
//! - [`thresholds`]: the Thresholds window: read by everyone, edited by whoever may.
//! - [`trend`]: the Trend view: agents per state over the last hours, stored and live.
//! - [`settings`]: what is kept between runs.
//! - [`sample`]: a made-up floor for the benchmark and the tests.

pub mod admin;
pub mod agent;
pub mod app;
pub mod feedback;
pub mod kiosk;
pub mod model;
pub mod net;
pub mod queues;
pub mod repaint;
pub mod sample;
pub mod settings;
mod signin;
mod style;
pub mod thresholds;
pub mod trend;
mod widgets;

pub use app::App;
