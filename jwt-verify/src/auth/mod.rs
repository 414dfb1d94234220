//! The tower layer: `Authorization: Bearer` in, verified claims into the request
//! extensions, RFC 6750 errors out.
//!
//! It is generic over request and response bodies (the response body only needs
//! `Default`), so it works with plain hyper and with axum without depending on either.

mod challenge;
mod future;
mod layer;
mod service;

pub use challenge::{Challenge, insufficient_scope};
pub use future::ResponseFuture;
pub use layer::BearerAuthLayer;
pub use service::BearerAuth;
