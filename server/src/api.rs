//! Requests and callers.
//!
//! - [`http`]: REST, health, readiness and metrics.
//! - [`queues`]: queues, their figures and intervals, and contacts over REST.
//! - [`trend`]: agents per state over the last hours, from the stored history.
//! - [`error`]: what a request fails with, and how each failure is answered.
//! - [`auth`]: roles, actions and the one `can(caller, action)`; refusals that say why.
//! - [`token`]: checking access tokens (JWTs) against the identity provider's published keys.
//! - [`auth_check`]: the sign-in self-check at start-up and `--check-auth`.
//! - [`audit`]: the audit log (sign-ins, refusals, configuration changes).

pub mod access;
pub mod audit;
pub mod auth;
pub mod auth_check;
pub mod error;
pub mod feedback;
pub mod http;
pub mod queues;
pub mod token;
pub mod trend;
