//! The Feedback window: what a floor manager writes, with the app's version, the view and
//! filters, and (if they tick it) a screenshot of the MONTI window. It goes to the MONTI server
//! only (`POST /api/v1/feedback`), where administrators read it.

use base64::Engine as _;
use egui::{RichText, Ui};
use monti_protocol::access::{MAX_FEEDBACK_SCREENSHOT, NewFeedback};

use crate::net::{CLIENT_NAME, Method, Request, RestCall, Session};

/// The open window.
#[derive(Debug, Default)]
pub struct FeedbackWindow {
    /// What the person writes.
    pub text: String,
    /// Whether a screenshot of the window goes with it.
    pub attach: bool,
    /// Waiting for the screenshot asked for on Send.
    waiting: bool,
    /// Where the screenshot lands when it is ready.
    shot: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<egui::ColorImage>>>>,
    /// The serial of the answer to the last send, once asked (to tell it from older ones).
    sent_after: Option<u64>,
    /// How the last send went, shown until the person writes again.
    outcome: Option<Result<(), String>>,
}

/// What the window asks for this frame.
#[derive(Debug, PartialEq)]
pub enum Asked {
    /// Nothing.
    Nothing,
    /// Close it.
    Close,
    /// Send this.
    Send(Request),
}

impl FeedbackWindow {
    /// Draws the window; `context` says what the app shows (view and filters).
    pub fn show(&mut self, ui: &mut Ui, session: &Session, context: &str) -> Asked {
        let mut asked = Asked::Nothing;
        ui.label(
            "What works, what does not, what you miss. It goes to MONTI's administrators only.",
        );
        let typed = ui.add(
            egui::TextEdit::multiline(&mut self.text)
                .hint_text("Your feedback")
                .desired_rows(6)
                .desired_width(f32::INFINITY),
        );
        if typed.changed() {
            self.outcome = None;
        }
        ui.checkbox(&mut self.attach, "Attach a screenshot of this window");
        ui.label(RichText::new(format!("Sent with it: {CLIENT_NAME}; {context}")).small());
        let answer = session.replies.get("feedback_sent");
        let answered =
            (self.sent_after).and_then(|after| answer.filter(|reply| reply.serial > after));
        if let Some(reply) = answered {
            self.sent_after = None;
            self.outcome = Some(reply.answer.as_ref().map(|_| ()).map_err(Clone::clone));
            if reply.answer.is_ok() {
                // Sent: a fresh page for the next message.
                self.text.clear();
            }
        }
        ui.horizontal(|ui| {
            let ready = !self.text.trim().is_empty() && !self.waiting;
            if ui.add_enabled(ready, egui::Button::new("Send")).clicked() {
                if self.attach {
                    // The picture comes with a later frame (`screenshot`).
                    let (shot, ctx) = (self.shot.clone(), ui.ctx().clone());
                    ui.ctx().request_screenshot(move |image| {
                        *shot.lock().unwrap_or_else(|e| e.into_inner()) = Some(image);
                        ctx.request_repaint();
                    });
                    self.waiting = true;
                } else {
                    asked = Asked::Send(self.request(context, None, session));
                }
            }
            if ui.button("Close").clicked() {
                asked = Asked::Close;
            }
            if self.waiting {
                ui.label("Taking the screenshot…");
            }
            match &self.outcome {
                _ if self.sent_after.is_some() => {
                    ui.label("Sending…");
                }
                Some(Ok(())) => {
                    ui.label("Sent. Thank you.");
                }
                Some(Err(why)) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("Not sent: {why}"));
                }
                None => {}
            }
        });
        if self.waiting {
            let image = self.shot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(image) = image {
                self.waiting = false;
                let png = encode_png(&image);
                asked = Asked::Send(self.request(context, png, session));
            }
        }
        asked
    }

    fn request(&mut self, context: &str, png: Option<Vec<u8>>, session: &Session) -> Request {
        self.sent_after = Some(
            (session.replies.get("feedback_sent"))
                .map(|reply| reply.serial)
                .unwrap_or(0),
        );
        let feedback = NewFeedback {
            text: self.text.trim().to_owned(),
            client: CLIENT_NAME.to_owned(),
            context: context.chars().take(1_000).collect(),
            screenshot_png_base64: png
                .filter(|png| png.len() <= MAX_FEEDBACK_SCREENSHOT)
                .map(|png| base64::engine::general_purpose::STANDARD.encode(png)),
        };
        Request::Rest(RestCall::send(
            "feedback_sent",
            Method::Post,
            "/api/v1/feedback",
            serde_json::to_value(feedback).unwrap_or_default(),
        ))
    }
}

/// The window's pixels as a PNG, or `None` if they cannot be encoded.
pub fn encode_png(image: &egui::ColorImage) -> Option<Vec<u8>> {
    let [width, height] = image.size;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|pixel| pixel.to_array())
        .collect();
    writer.write_image_data(&rgba).ok()?;
    writer.finish().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_screenshot_becomes_a_png_of_its_size() {
        let image = egui::ColorImage::new([3, 2], vec![egui::Color32::RED; 6]);
        let png = encode_png(&image).expect("encodes");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("decodes");
        assert_eq!((reader.info().width, reader.info().height), (3, 2));
    }
}
