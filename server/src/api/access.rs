//! Who may see what, changed at run time: the group bindings live in the database, seeded from
//! the configuration file, changed by administrators through the API (and the desktop's Admin
//! screen), every change audited with before and after, and pushed to open connections.
//!
//! Which wins: the database, until the configuration file's bindings change. On start the
//! server compares the file's bindings with the file's as it last read them; when they differ
//! (someone changed the file, the way to manage bindings as code) the file's replace the stored
//! ones, audited; otherwise what administrators set in the app stands. `GET
//! /api/v1/access/bindings` says so and whether the file differs now.
//!
//! Devices: every subject that opens the stream is noted (app and version, address, first and
//! last seen; the wallboard it reads), and an administrator may sign one out: its tokens from
//! sign-ins before then are refused (by the token's `auth_time`, else its `iat`), and its open
//! connections are closed with the reason.
//!
//! Other servers sharing the database reread bindings and sign-outs every [`REREAD`], so a
//! change made on one reaches the connections of all within that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use monti_protocol::access::{BindingsJson, DeviceJson, GroupBinding, bindings_problem};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::store::db::Db;

/// The setting that holds the bindings.
const SETTING: &str = "access:bindings";
/// How often a server rereads the bindings another may have changed.
pub const REREAD: Duration = Duration::from_secs(5);
/// Who wrote bindings taken from the configuration file.
const FILE: &str = "configuration file";

/// The bindings as stored, with the file's as last read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// In force.
    pub bindings: Vec<GroupBinding>,
    /// Who wrote them last.
    pub changed_by: String,
    /// When, ms since the Unix epoch.
    pub changed_at_ms: u64,
    /// The configuration file's bindings when the server last read them.
    pub file: Vec<GroupBinding>,
}

/// How often a device's last seen is written while nothing else about it changes.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// A device as this server last noted it.
#[derive(Debug, Default)]
struct Device {
    connected: u32,
    client: String,
    address: Option<String>,
    written_ms: u64,
}

/// Who may see what right now: the bindings, and the subjects signed out (when).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// The bindings as stored.
    pub stored: Stored,
    /// Subjects an administrator signed out, and when (ms): tokens from sign-ins before then
    /// are refused.
    pub signed_out: HashMap<String, u64>,
}

impl Now {
    /// Why a token of `subject` from a sign-in at `signed_in_ms` is refused, if it is.
    pub fn refused(&self, subject: &str, signed_in_ms: Option<u64>) -> Option<String> {
        let at = *self.signed_out.get(subject)?;
        (signed_in_ms.is_none_or(|signed_in| signed_in < at))
            .then(|| "an administrator signed this device out of MONTI; sign in again".to_owned())
    }
}

/// The bindings in force on this server, the devices signed out, and their changes.
pub struct Access {
    current: watch::Sender<Arc<Now>>,
    /// The devices that connected to this server.
    devices: std::sync::Mutex<HashMap<String, Device>>,
    /// One change at a time on this server: a change reads, then writes.
    writing: Mutex<()>,
    /// The file's bindings now.
    file: Vec<GroupBinding>,
}

impl Access {
    /// The bindings in force: those stored, seeded from `file` on first start and replaced by
    /// it when it changed since it was last read (see the module). Returns what to audit.
    pub async fn load(
        db: &Db,
        file: &[GroupBinding],
        now_ms: u64,
    ) -> anyhow::Result<(Access, Option<String>)> {
        let stored = read(db).await?;
        let signed_out = signed_out(db).await?;
        let (stored, audit) = match stored {
            Some(stored) if stored.file == file => (stored, None),
            before => {
                let seeded = Stored {
                    bindings: file.to_vec(),
                    changed_by: FILE.to_owned(),
                    changed_at_ms: now_ms,
                    file: file.to_vec(),
                };
                write(db, &seeded).await?;
                let audit = match before {
                    None => format!(
                        "bindings seeded from the configuration file: {}",
                        json(file)
                    ),
                    Some(before) => format!(
                        "bindings replaced by the configuration file's, which changed: before {} \
                         after {}",
                        json(&before.bindings),
                        json(file)
                    ),
                };
                (seeded, Some(audit))
            }
        };
        let access = Access {
            current: watch::channel(Arc::new(Now { stored, signed_out })).0,
            devices: std::sync::Mutex::default(),
            writing: Mutex::new(()),
            file: file.to_vec(),
        };
        Ok((access, audit))
    }

    /// The bindings and sign-outs in force.
    pub fn now(&self) -> Arc<Now> {
        self.current.borrow().clone()
    }

    /// Told whenever the bindings or sign-outs change.
    pub fn watch(&self) -> watch::Receiver<Arc<Now>> {
        self.current.subscribe()
    }

    /// Replaces the bindings; returns the before and after for the audit log.
    pub async fn set(
        &self,
        db: &Db,
        by: &str,
        bindings: Vec<GroupBinding>,
        now_ms: u64,
    ) -> anyhow::Result<String> {
        let _one_at_a_time = self.writing.lock().await;
        let before = read(db).await?.unwrap_or_default();
        let after = Stored {
            bindings,
            changed_by: by.to_owned(),
            changed_at_ms: now_ms,
            file: before.file.clone(),
        };
        write(db, &after).await?;
        let audit = format!(
            "bindings changed: before {} after {}",
            json(&before.bindings),
            json(&after.bindings)
        );
        self.current
            .send_modify(|now| Arc::make_mut(now).stored = after);
        Ok(audit)
    }

    /// Signs `subject` out at `now_ms`; whether it was a known device.
    pub async fn sign_out(&self, db: &Db, subject: &str, now_ms: u64) -> anyhow::Result<bool> {
        if !db.sign_out_device(subject, now_ms as i64).await? {
            return Ok(false);
        }
        self.current.send_modify(|now| {
            Arc::make_mut(now)
                .signed_out
                .insert(subject.to_owned(), now_ms);
        });
        Ok(true)
    }

    /// Rereads the stored bindings and sign-outs (another server may have changed them).
    pub async fn reread(&self, db: &Db) -> anyhow::Result<()> {
        let Some(stored) = read(db).await? else {
            return Ok(());
        };
        let fresh = Now {
            stored,
            signed_out: signed_out(db).await?,
        };
        self.current.send_if_modified(|current| {
            let changed = **current != fresh;
            if changed {
                *current = Arc::new(fresh);
            }
            changed
        });
        Ok(())
    }

    /// A stream connection of `subject` opened (`true`) or closed: counted, and the device
    /// noted in the database in the background, at most once a minute per subject unless its
    /// app or address changed (a restart storm of viewers writes little).
    pub fn connection(
        &self,
        db: &Db,
        subject: &str,
        client: &str,
        address: Option<String>,
        opened: bool,
        now_ms: u64,
    ) {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let device = devices.entry(subject.to_owned()).or_default();
        if opened {
            device.connected += 1;
        } else {
            device.connected = device.connected.saturating_sub(1);
        }
        let changed = device.client != client || (address.is_some() && device.address != address);
        if !changed && now_ms < device.written_ms + NOTE_EVERY.as_millis() as u64 {
            return;
        }
        device.client = client.to_owned();
        device.address.clone_from(&address);
        device.written_ms = now_ms;
        let (db, subject, client) = (db.clone(), subject.to_owned(), client.to_owned());
        tokio::spawn(async move {
            let noted = db.device_seen(&subject, &client, address.as_deref(), now_ms as i64);
            if let Err(err) = noted.await {
                tracing::warn!(error = format!("{err:#}"), "cannot note a device");
            }
        });
    }

    /// Open stream connections per subject on this server.
    fn connected(&self) -> HashMap<String, u32> {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        (devices.iter())
            .filter(|(_, device)| device.connected > 0)
            .map(|(subject, device)| (subject.clone(), device.connected))
            .collect()
    }

    /// The bindings in force as the API shows them.
    pub fn json(&self) -> BindingsJson {
        let now = self.now();
        let stored = &now.stored;
        BindingsJson {
            bindings: stored.bindings.clone(),
            changed_by: stored.changed_by.clone(),
            changed_at_ms: stored.changed_at_ms,
            rule: "Bindings changed here stand until the configuration file's [[auth.bindings]] \
                   change; then the file's replace them when the server starts."
                .to_owned(),
            file_differs: stored.bindings != self.file,
        }
    }
}

async fn read(db: &Db) -> anyhow::Result<Option<Stored>> {
    let Some(json) = db.setting(SETTING).await? else {
        return Ok(None);
    };
    let stored = serde_json::from_str(&json)
        .map_err(|err| anyhow::anyhow!("the stored bindings are invalid: {err}"))?;
    Ok(Some(stored))
}

async fn signed_out(db: &Db) -> anyhow::Result<HashMap<String, u64>> {
    Ok((db.signed_out().await?.into_iter())
        .map(|(subject, at)| (subject, at.max(0) as u64))
        .collect())
}

async fn write(db: &Db, stored: &Stored) -> anyhow::Result<()> {
    let json = serde_json::to_string(stored)?;
    db.set_setting(
        SETTING,
        &json,
        &stored.changed_by,
        stored.changed_at_ms as i64,
    )
    .await
}

fn json(bindings: &[GroupBinding]) -> String {
    serde_json::to_string(bindings).unwrap_or_default()
}

/// Rereads the bindings every [`REREAD`] until `stop`.
pub async fn reread(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(REREAD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(err) = state.access.reread(&state.db).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "cannot reread the role bindings"
            );
        }
    }
}

/// `/api/v1/access/...`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/access/bindings", get(bindings).put(set_bindings))
        .route("/api/v1/access/devices", get(devices))
        .route("/api/v1/access/devices/{subject}/sign-out", post(sign_out))
}

/// Every device that opened the stream, most recently seen first; administrators only.
async fn devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<DeviceJson>>, Error> {
    caller.require(Action::ManageAccess)?;
    let rows = state.db.devices().await?;
    let connected = state.access.connected();
    Ok(Json(
        rows.into_iter()
            .map(|row| DeviceJson {
                connected: connected.get(&row.subject).copied().unwrap_or(0),
                subject: row.subject,
                wallboard: row.wallboard,
                client: row.client,
                address: row.address,
                first_seen_ms: row.first_seen.max(0) as u64,
                last_seen_ms: row.last_seen.max(0) as u64,
                signed_out_ms: row.signed_out_at.map(|at| at.max(0) as u64),
            })
            .collect(),
    ))
}

/// Signs a device out: its tokens from sign-ins before now are refused and its open
/// connections closed, on every server; administrators only, audited.
async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
    Path(subject): Path<String>,
) -> Result<Json<Vec<DeviceJson>>, Error> {
    caller.require(Action::ManageAccess)?;
    if subject == caller.subject {
        return Err(Error::BadRequest(
            "you cannot sign yourself out here; use Sign out in the app".to_owned(),
        ));
    }
    let now = state.clock.now_ms();
    if !state.access.sign_out(&state.db, &subject, now).await? {
        return Err(Error::NotFound);
    }
    (state.audit).access_changed(Some(&caller.subject), &format!("signed {subject:?} out"));
    devices(State(state), caller).await
}

/// The bindings in force; administrators only.
async fn bindings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BindingsJson>, Error> {
    caller.require(Action::ManageAccess)?;
    Ok(Json(state.access.json()))
}

/// Replaces the bindings; administrators only, audited with before and after, applied to open
/// connections at once.
async fn set_bindings(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Vec<GroupBinding>>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BindingsJson>, Error> {
    caller.require(Action::ManageAccess)?;
    let Json(bindings) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    if let Some(problem) = bindings_problem(&bindings) {
        return Err(Error::BadRequest(problem));
    }
    let audit = (state.access)
        .set(&state.db, &caller.subject, bindings, state.clock.now_ms())
        .await?;
    state.audit.access_changed(Some(&caller.subject), &audit);
    Ok(Json(state.access.json()))
}
