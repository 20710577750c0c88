//! Several processes, one twin: the twin server and the remote backend.
//!
//! TUTORIAL-PLACEHOLDER

mod client;
#[doc(hidden)]
pub mod fuzz;
mod peer;
pub mod protocol;
mod server;
mod wire;

pub use client::{Remote, RemoteQueue};
pub use server::{Server, ServerConfig};
