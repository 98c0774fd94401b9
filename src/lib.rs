//! pam-totp: a PAM module and command-line tool for time-based (RFC 6238) and counter-based
//! (RFC 4226) one-time codes as a second factor.
//!
//! The crate has four rooms, and data flows one way through them:
//! - [`otp`]: the pure core (codes, base32, URIs, answers, verification decisions);
//! - [`store`]: secret files and state files (safe open, parse, lock, durable writes);
//! - [`config`] and [`auth`]: options and the authentication flow, written against a
//!   [`auth::Conversation`] trait so it runs with a scripted fake as well as through libpam;
//! - [`pam`]: the libpam FFI (the module's entry points and the small client that `try`,
//!   `test` and the tests drive), and [`sys`]: the few raw libc calls.
//!
//! `unsafe` is allowed only in `pam` and `sys`.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod otp;
#[allow(unsafe_code)]
pub mod pam;
pub mod store;
#[allow(unsafe_code)]
pub mod sys;
