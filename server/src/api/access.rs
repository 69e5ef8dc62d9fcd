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
//! Ingest keys: besides the configuration file's Amazon Connect keys, administrators make new
//! ones (the secret is shown once; only its SHA-256 is stored) and retire old ones, the file's
//! included, so a key is rotated without a redeploy: make, paste into AWS, retire the old.
//!
//! Other servers sharing the database reread bindings, sign-outs and keys every [`REREAD`], so
//! a change made on one reaches all within that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use monti_protocol::access::{
    BindingsJson, DeviceJson, GroupBinding, IngestKeyJson, KeyKind, KeyRequest, NewIngestKeyJson,
    bindings_problem,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::sources::amazon_connect::same_key;
use crate::store::db::Db;

/// The setting that holds the bindings.
const SETTING: &str = "access:bindings";
/// The setting that holds the ingest keys made here and the file's keys retired.
const KEYS: &str = "access:ingest_keys";
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
    /// The ingest keys made here, and the file's retired.
    pub keys: Keys,
}

/// Ingest keys made by administrators, and which of the configuration file's are retired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// Made here, oldest first.
    pub made: Vec<StoredKey>,
    /// The file's keys retired, and when (ms).
    pub file_retired: std::collections::BTreeMap<KeyKind, u64>,
}

/// A key made here: its SHA-256, never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// The first 12 hex digits of the hash.
    pub id: String,
    /// What it lets in.
    pub kind: KeyKind,
    /// Its name.
    pub label: String,
    /// The SHA-256 of the key, hex.
    pub sha256: String,
    /// Who made it.
    pub created_by: String,
    /// When, ms.
    pub created_ms: u64,
    /// When it was retired, ms.
    pub retired_ms: Option<u64>,
}

/// Whether a delivery's key lets it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// No key of that kind is in force: the endpoint is off.
    Off,
    /// The key is one in force.
    Accepted,
    /// It is not.
    Refused,
}

impl Now {
    /// Whether `given` is a `kind` key in force: the file's `file_key` unless retired, or one
    /// made here and not retired. Compared in constant time.
    pub fn admit(&self, kind: KeyKind, given: &[u8], file_key: &str) -> Admission {
        let file = (!file_key.is_empty() && !self.keys.file_retired.contains_key(&kind))
            .then_some(file_key);
        let made: Vec<&StoredKey> = (self.keys.made.iter())
            .filter(|key| key.kind == kind && key.retired_ms.is_none())
            .collect();
        if file.is_none() && made.is_empty() {
            return Admission::Off;
        }
        let given_hash = sha256_hex(given);
        // Every candidate is compared, so the time taken says nothing about which matched.
        let mut accepted = file.is_some_and(|key| same_key(given, key.as_bytes()));
        for key in made {
            accepted |= same_key(given_hash.as_bytes(), key.sha256.as_bytes());
        }
        if accepted {
            Admission::Accepted
        } else {
            Admission::Refused
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
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
        let keys = read_keys(db).await?;
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
            current: watch::channel(Arc::new(Now {
                stored,
                signed_out,
                keys,
            }))
            .0,
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

    /// Makes a key: returns it, its secret (shown this once, never stored) and what to audit.
    pub async fn make_key(
        &self,
        db: &Db,
        by: &str,
        request: &KeyRequest,
        now_ms: u64,
    ) -> anyhow::Result<(StoredKey, String, String)> {
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| anyhow::anyhow!("the system has no random numbers"))?;
        let secret =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
        let sha256 = sha256_hex(secret.as_bytes());
        let key = StoredKey {
            id: sha256[..12].to_owned(),
            kind: request.kind,
            label: request.label.trim().to_owned(),
            sha256,
            created_by: by.to_owned(),
            created_ms: now_ms,
            retired_ms: None,
        };
        let _one_at_a_time = self.writing.lock().await;
        let mut keys = read_keys(db).await?;
        keys.made.push(key.clone());
        write_keys(db, &keys, by, now_ms).await?;
        self.current
            .send_modify(|now| Arc::make_mut(now).keys = keys);
        let audit = format!(
            "{} key {:?} made (id {})",
            key.kind.title(),
            key.label,
            key.id
        );
        Ok((key, secret, audit))
    }

    /// Retires key `id` (`file-firehose`, `file-eventbridge` or a made key's id); returns what
    /// to audit, or `None` when there is no such key in force.
    pub async fn retire_key(
        &self,
        db: &Db,
        by: &str,
        id: &str,
        now_ms: u64,
    ) -> anyhow::Result<Option<String>> {
        let _one_at_a_time = self.writing.lock().await;
        let mut keys = read_keys(db).await?;
        let file_kind = KeyKind::ALL
            .into_iter()
            .find(|kind| file_key_id(*kind) == id);
        let audit = match file_kind {
            Some(kind) => match keys.file_retired.entry(kind) {
                std::collections::btree_map::Entry::Occupied(_) => return Ok(None),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(now_ms);
                    format!("the configuration file's {} key retired", kind.title())
                }
            },
            None => {
                let Some(key) =
                    (keys.made.iter_mut()).find(|key| key.id == id && key.retired_ms.is_none())
                else {
                    return Ok(None);
                };
                key.retired_ms = Some(now_ms);
                format!(
                    "{} key {:?} retired (id {})",
                    key.kind.title(),
                    key.label,
                    key.id
                )
            }
        };
        write_keys(db, &keys, by, now_ms).await?;
        self.current
            .send_modify(|now| Arc::make_mut(now).keys = keys);
        Ok(Some(audit))
    }

    /// Rereads the stored bindings and sign-outs (another server may have changed them).
    pub async fn reread(&self, db: &Db) -> anyhow::Result<()> {
        let Some(stored) = read(db).await? else {
            return Ok(());
        };
        let fresh = Now {
            stored,
            signed_out: signed_out(db).await?,
            keys: read_keys(db).await?,
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

/// The bindings a server started now with `file` would put in force, without changing
/// anything (for `monti-server check`), and where they come from, in words.
pub async fn in_force(
    db: &Db,
    file: &[GroupBinding],
) -> anyhow::Result<(Vec<GroupBinding>, String)> {
    Ok(match read(db).await? {
        Some(stored) if stored.file == file => {
            let from = format!(
                "the database (last changed by {} at {} ms)",
                stored.changed_by, stored.changed_at_ms
            );
            (stored.bindings, from)
        }
        Some(_) => (file.to_vec(), "the configuration file (changed since the server last read it: it replaces the stored bindings at the next start)".to_owned()),
        None => (file.to_vec(), "the configuration file (nothing stored yet)".to_owned()),
    })
}

async fn read(db: &Db) -> anyhow::Result<Option<Stored>> {
    let Some(json) = db.setting(SETTING).await? else {
        return Ok(None);
    };
    let stored = serde_json::from_str(&json)
        .map_err(|err| anyhow::anyhow!("the stored bindings are invalid: {err}"))?;
    Ok(Some(stored))
}

async fn read_keys(db: &Db) -> anyhow::Result<Keys> {
    let Some(json) = db.setting(KEYS).await? else {
        return Ok(Keys::default());
    };
    serde_json::from_str(&json)
        .map_err(|err| anyhow::anyhow!("the stored ingest keys are invalid: {err}"))
}

async fn write_keys(db: &Db, keys: &Keys, by: &str, now_ms: u64) -> anyhow::Result<()> {
    db.set_setting(KEYS, &serde_json::to_string(keys)?, by, now_ms as i64)
        .await
}

/// How the configuration file's key of `kind` is named in the list.
fn file_key_id(kind: KeyKind) -> String {
    format!(
        "file-{}",
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    )
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
        .route("/api/v1/access/keys", get(keys).post(make_key))
        .route("/api/v1/access/keys/{id}/retire", post(retire_key))
        .route("/api/v1/access/devices/{subject}/sign-out", post(sign_out))
}

/// The Amazon Connect keys: the configuration file's (where set) and those made here, retired
/// ones included; administrators only.
async fn keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<IngestKeyJson>>, Error> {
    caller.require(Action::ManageAccess)?;
    let now = state.access.now();
    let connect = &state.config.amazon_connect;
    let mut list = Vec::new();
    for (kind, key) in [
        (KeyKind::Firehose, &connect.access_key),
        (KeyKind::Eventbridge, &connect.eventbridge_key),
    ] {
        if !key.is_empty() {
            list.push(IngestKeyJson {
                id: file_key_id(kind),
                kind,
                label: "from the configuration file".to_owned(),
                created_by: FILE.to_owned(),
                created_ms: 0,
                retired_ms: now.keys.file_retired.get(&kind).copied(),
            });
        }
    }
    list.extend(now.keys.made.iter().map(|key| IngestKeyJson {
        id: key.id.clone(),
        kind: key.kind,
        label: key.label.clone(),
        created_by: key.created_by.clone(),
        created_ms: key.created_ms,
        retired_ms: key.retired_ms,
    }));
    Ok(Json(list))
}

/// Makes a key and shows its secret this once; administrators only, audited.
async fn make_key(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<KeyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<NewIngestKeyJson>, Error> {
    caller.require(Action::ManageAccess)?;
    let Json(request) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let label = request.label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "a key's label is 1 to 100 characters, none of them control characters".to_owned(),
        ));
    }
    let now = state.clock.now_ms();
    let (made, secret, audit) = (state.access)
        .make_key(&state.db, &caller.subject, &request, now)
        .await?;
    state.audit.access_changed(Some(&caller.subject), &audit);
    Ok(Json(NewIngestKeyJson {
        key: IngestKeyJson {
            id: made.id,
            kind: made.kind,
            label: made.label,
            created_by: made.created_by,
            created_ms: made.created_ms,
            retired_ms: None,
        },
        secret,
    }))
}

/// Retires a key: deliveries with it are refused from now on; administrators only, audited.
async fn retire_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<IngestKeyJson>>, Error> {
    caller.require(Action::ManageAccess)?;
    let now = state.clock.now_ms();
    let Some(audit) = state
        .access
        .retire_key(&state.db, &caller.subject, &id, now)
        .await?
    else {
        return Err(Error::NotFound);
    };
    state.audit.access_changed(Some(&caller.subject), &audit);
    keys(State(state), caller).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn made(kind: KeyKind, secret: &str, retired_ms: Option<u64>) -> StoredKey {
        StoredKey {
            id: sha256_hex(secret.as_bytes())[..12].to_owned(),
            kind,
            label: "test".to_owned(),
            sha256: sha256_hex(secret.as_bytes()),
            created_by: "admin".to_owned(),
            created_ms: 1,
            retired_ms,
        }
    }

    #[test]
    fn keys_in_force_admit_and_others_do_not() {
        use Admission::*;
        let mut now = Now::default();
        assert_eq!(
            now.admit(KeyKind::Firehose, b"x", ""),
            Off,
            "nothing set: off"
        );
        assert_eq!(
            now.admit(KeyKind::Firehose, b"file-key", "file-key"),
            Accepted
        );
        assert_eq!(
            now.admit(KeyKind::Firehose, b"file-kez", "file-key"),
            Refused
        );
        now.keys.made = vec![
            made(KeyKind::Firehose, "new-key", None),
            made(KeyKind::Firehose, "old-key", Some(5)),
            made(KeyKind::Eventbridge, "bridge-key", None),
        ];
        assert_eq!(
            now.admit(KeyKind::Firehose, b"new-key", "file-key"),
            Accepted
        );
        assert_eq!(
            now.admit(KeyKind::Firehose, b"old-key", "file-key"),
            Refused,
            "retired"
        );
        assert_eq!(
            now.admit(KeyKind::Firehose, b"bridge-key", "file-key"),
            Refused,
            "another kind's"
        );
        assert_eq!(now.admit(KeyKind::Eventbridge, b"bridge-key", ""), Accepted);
        // A hash is not a key: sending the stored hash does not get in.
        let hash = sha256_hex(b"new-key");
        assert_eq!(now.admit(KeyKind::Firehose, hash.as_bytes(), ""), Refused);
        now.keys.file_retired.insert(KeyKind::Firehose, 9);
        assert_eq!(
            now.admit(KeyKind::Firehose, b"file-key", "file-key"),
            Refused
        );
        now.keys.made.retain(|key| key.kind == KeyKind::Eventbridge);
        assert_eq!(now.admit(KeyKind::Firehose, b"file-key", "file-key"), Off);
    }
}
