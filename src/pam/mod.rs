//! libpam FFI, both sides: the module's entry points ([`module`]), the mapping of outcomes to
//! PAM codes ([`codes`]), and the small client ([`client`]) that `try`, `test` and the tests
//! drive. With `sys.rs`, the only place `unsafe` appears.

pub mod client;
pub mod codes;
pub mod ffi;
mod module;
