//! The sign-in screens: connecting, "sign in needed", and the device flow's code with its QR
//! code, the link, a button that opens the browser, the time left and cancel.

use egui::{Align, Color32, Layout, RichText, Sense, Ui, Vec2};
use qrcode::QrCode;

use crate::app::Command;
use crate::model::duration_text;
use crate::net::{CodeScreen, Session, SignIn};

/// What the person types to reach a server: its URL, and where the network needs it, the
/// company CA file and the proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectFields {
    /// The server's URL.
    pub server: String,
    /// A CA certificate file (PEM) trusted beside the system's store; empty for none.
    pub ca_file: String,
    /// A proxy URL; empty for the system's settings.
    pub proxy: String,
}

/// Draws the screen for `session.sign_in`; `now_ms` is the local clock.
pub fn screen(
    ui: &mut Ui,
    session: &Session,
    fields: &mut ConnectFields,
    now_ms: u64,
) -> Option<Command> {
    let mut action = None;
    ui.with_layout(Layout::top_down(Align::Center), |ui| {
        ui.add_space(24.0);
        ui.label(RichText::new("MONTI").size(28.0).strong());
        ui.add_space(12.0);
        match &session.sign_in {
            SignIn::Code(code) => action = code_screen(ui, code, now_ms),
            SignIn::Browser { url } => {
                ui.label(RichText::new("Sign in in the browser window that opened").size(20.0));
                ui.add_space(8.0);
                ui.label("If none opened, open this page on this computer:");
                ui.hyperlink_to(RichText::new(url).size(14.0), url);
                ui.add_space(8.0);
                if ui
                    .button(RichText::new("Open in browser").size(18.0))
                    .clicked()
                {
                    ui.ctx().open_url(egui::OpenUrl::new_tab(url));
                }
                if ui.button("Cancel").clicked() {
                    action = Some(Command::CancelSignIn);
                }
            }
            SignIn::Needed { problem } => {
                ui.label(RichText::new(format!("Sign in to {}", session.server)).size(20.0));
                if let Some(problem) = problem {
                    ui.colored_label(Color32::from_rgb(0xe5, 0x39, 0x35), problem);
                }
                ui.add_space(8.0);
                if ui.button(RichText::new("Sign in").size(20.0)).clicked() {
                    action = Some(Command::SignIn);
                }
            }
            _ => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(
                        RichText::new(format!("Connecting to {}…", session.server)).size(18.0),
                    );
                });
                if let Some(problem) = &session.problem {
                    ui.colored_label(Color32::from_rgb(0xe5, 0x39, 0x35), problem);
                    if let Some(at) = session.retry_at_ms {
                        ui.label(format!(
                            "Trying again in {} s",
                            at.saturating_sub(now_ms).div_ceil(1000)
                        ));
                    }
                }
            }
        }
        if !matches!(session.sign_in, SignIn::Code(_) | SignIn::Browser { .. }) {
            ui.add_space(24.0);
            egui::Grid::new("connect").num_columns(2).show(ui, |ui| {
                let label = ui.label("Server");
                ui.text_edit_singleline(&mut fields.server)
                    .labelled_by(label.id);
                ui.end_row();
                // Where a certificate or the proxy is the problem, here is where to fix it.
                let label = ui.label("Company CA file");
                ui.text_edit_singleline(&mut fields.ca_file)
                    .labelled_by(label.id)
                    .on_hover_text("A CA certificate (PEM) trusted beside this computer's own");
                ui.end_row();
                let label = ui.label("Proxy");
                ui.text_edit_singleline(&mut fields.proxy)
                    .labelled_by(label.id)
                    .on_hover_text("http://user:password@host:port; empty: the system's settings");
                ui.end_row();
            });
            if ui.button("Connect").clicked() {
                action = Some(Command::Connect);
            }
        }
    });
    action
}

fn code_screen(ui: &mut Ui, code: &CodeScreen, now_ms: u64) -> Option<Command> {
    let mut action = None;
    ui.label(RichText::new("Sign in with your phone or another computer").size(20.0));
    ui.add_space(8.0);
    ui.label(RichText::new("Scan the code, or open").size(16.0));
    ui.hyperlink_to(
        RichText::new(&code.verification_uri).size(16.0),
        &code.verification_uri,
    );
    ui.label(RichText::new("and enter").size(16.0));
    ui.add_space(4.0);
    ui.label(
        RichText::new(&code.user_code)
            .size(56.0)
            .monospace()
            .strong(),
    )
    .on_hover_text("Your sign-in code");
    ui.add_space(8.0);
    qr(ui, &code.qr_uri, 240.0);
    ui.add_space(8.0);
    if ui
        .button(RichText::new("Open in browser").size(18.0))
        .clicked()
    {
        ui.ctx().open_url(egui::OpenUrl::new_tab(&code.qr_uri));
    }
    let left = code.expires_at_ms.saturating_sub(now_ms);
    ui.label(RichText::new(format!("The code expires in {}", duration_text(left))).size(16.0));
    ui.add_space(8.0);
    if ui.button("Cancel").clicked() {
        action = Some(Command::CancelSignIn);
    }
    action
}

/// Paints `text` as a QR code `size` points wide (with the quiet zone scanners need), labelled
/// for screen readers. Text too long for a QR code shows a note instead.
pub fn qr(ui: &mut Ui, text: &str, size: f32) {
    let Ok(code) = QrCode::new(text.as_bytes()) else {
        ui.label("(the link is too long for a QR code)");
        return;
    };
    let width = code.width();
    let colours = code.to_colors();
    let quiet = 4;
    let modules = (width + 2 * quiet) as f32;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::WHITE);
    let module = size / modules;
    for (index, colour) in colours.iter().enumerate() {
        if *colour == qrcode::Color::Dark {
            let (x, y) = (
                (index % width + quiet) as f32,
                (index / width + quiet) as f32,
            );
            let min = rect.min + Vec2::new(x, y) * module;
            painter.rect_filled(
                egui::Rect::from_min_size(min, Vec2::splat(module + 0.5)),
                0.0,
                Color32::BLACK,
            );
        }
    }
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Image, true, format!("QR code for {text}"))
    });
}
