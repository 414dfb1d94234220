//! Remote key sets: the sans-IO cache state machine, the HTTP seam, and (with the
//! `runtime` feature) the tokio task that drives them.

mod cache;
#[cfg(feature = "runtime")]
pub(crate) mod driver;
mod fetch;
#[cfg(feature = "hyper-client")]
mod hyper;

pub use cache::{
    Action, Demand, DemandOutcome, FetchKind, JwksCache, JwksCacheConfig, Loaded, Update,
};
pub use fetch::{BoxFuture, FetchError, FetchRequest, HttpFetcher};
#[cfg(feature = "hyper-client")]
pub use hyper::HyperFetcher;
