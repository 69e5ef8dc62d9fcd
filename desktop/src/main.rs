//! `monti-desktop`: the floor manager's app.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;

use monti_desktop::App;
use monti_desktop::app::Screen;
use monti_desktop::kiosk::{self, Kiosk};
use monti_desktop::net::Net;
use monti_desktop::repaint::DataRepaint;
use monti_desktop::settings::{Theme, ViewKind};

/// MONTI's live floor for floor managers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's URL; remembered for the next start. [default: the last one, else
    /// http://127.0.0.1:8080]
    #[arg(long, env = "MONTI_DESKTOP_SERVER")]
    server: Option<String>,
    /// A CA certificate file (PEM) to trust beside the operating system's store, for a company
    /// CA that IT has not installed; remembered for the next start ("" forgets it).
    #[arg(long, env = "MONTI_CA_FILE", value_name = "FILE")]
    ca_file: Option<String>,
    /// A proxy for every connection, http://[user:password@]host:port; remembered ("" goes
    /// back to the environment's and the system's settings).
    #[arg(long, env = "MONTI_PROXY", value_name = "URL")]
    proxy: Option<String>,
    /// Start with this view: queues, summary, teams, sites, matrix or agents.
    #[arg(long, value_parser = parse_view)]
    view: Option<ViewKind>,
    /// Start with this theme: dark or light.
    #[arg(long, value_parser = parse_theme)]
    theme: Option<Theme>,
    /// Run as a wallboard: fullscreen, rotating pages, no controls; remembered for the next
    /// start (until --desktop).
    #[arg(long, conflicts_with = "desktop")]
    kiosk: bool,
    /// Run as the floor manager's app again.
    #[arg(long)]
    desktop: bool,
    /// This wallboard's name: the server keeps its pages under it. [default: the last one, else
    /// "default"]
    #[arg(long, env = "MONTI_WALLBOARD")]
    wallboard: Option<String>,
    /// A local wallboard configuration (JSON or TOML, as the server's) that wins over the
    /// server's.
    #[arg(long, value_name = "FILE")]
    wallboard_config: Option<PathBuf>,
}

fn parse_view(name: &str) -> Result<ViewKind, String> {
    ViewKind::from_name(name)
        .ok_or_else(|| format!("{name:?} is not queues, summary, teams, sites, matrix or agents"))
}

fn parse_theme(name: &str) -> Result<Theme, String> {
    match name {
        "dark" => Ok(Theme::Dark),
        "light" => Ok(Theme::Light),
        _ => Err(format!("{name:?} is not dark or light")),
    }
}

/// eframe's name for the app: its window class and where it keeps its settings.
const APP_ID: &str = "MONTI";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wgpu=warn,eframe=warn".into()),
        )
        .init();
    let args = Args::parse();
    let local_wallboard = args
        .wallboard_config
        .as_deref()
        .map(kiosk::read_config)
        .transpose()?;
    // A wallboard opens fullscreen from its first frame, whatever window size eframe saved.
    let remembered = eframe::storage_dir(APP_ID).and_then(|dir| App::settings_in(&dir));
    let wallboard =
        (args.kiosk || remembered.is_some_and(|settings| settings.kiosk)) && !args.desktop;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("MONTI")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([640.0, 400.0])
            .with_fullscreen(wallboard)
            .with_decorations(!wallboard)
            .with_app_id(APP_ID)
            .with_icon(icon()),
        persist_window: !wallboard,
        ..Default::default()
    };
    eframe::run_native(
        APP_ID,
        options,
        Box::new(move |cc| {
            let mut settings = App::stored_settings(cc.storage);
            if let Some(server) = args.server {
                settings.server = server;
            }
            if let Some(ca_file) = args.ca_file {
                settings.ca_file = ca_file;
            }
            if let Some(proxy) = args.proxy {
                settings.proxy = proxy;
            }
            if let Some(view) = args.view {
                settings.view = view;
            }
            if let Some(theme) = args.theme {
                settings.theme = theme;
            }
            if let Some(wallboard) = args.wallboard {
                settings.wallboard = wallboard;
            }
            // The stored setting keeps a wallboard a wallboard across reboots.
            let kiosk = (args.kiosk || settings.kiosk) && !args.desktop;
            settings.kiosk = kiosk;
            let pace = if kiosk {
                DataRepaint::WALLBOARD
            } else {
                DataRepaint::DESKTOP
            };
            let news = DataRepaint::new(cc.egui_ctx.clone(), pace);
            let repaint = news.clone();
            let wallboard = kiosk.then(|| settings.wallboard.clone());
            let net = Net::start(
                &settings.server,
                settings.transport(),
                App::first_subscription(),
                wallboard,
                move || repaint.news(),
            )?;
            let mut app = App::new(settings, net);
            app.pace_news(news);
            if kiosk {
                app.screen = Screen::Wallboard(Kiosk::new(local_wallboard));
            }
            app.setup(&cc.egui_ctx);
            Ok(Box::new(app))
        }),
    )
    .map_err(|err| anyhow::anyhow!("{err}"))
    .context("cannot open the window (is there a display? DISPLAY or WAYLAND_DISPLAY)")
}

/// The application icon (`assets/icon/monti.png`, the one every package installs).
fn icon() -> egui::IconData {
    const PNG: &[u8] = include_bytes!("../../assets/icon/monti.png");
    // The PNG is part of the build: a broken one is a build defect, caught by the test below.
    eframe::icon_data::from_png_bytes(PNG).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_icon_is_a_square_png() {
        let icon = super::icon();
        assert_eq!((icon.width, icon.height), (256, 256));
        assert_eq!(icon.rgba.len(), 256 * 256 * 4);
    }
}
