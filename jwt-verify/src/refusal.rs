//! [`Refusal`]: why one attempt at a verification stopped short of a verified token.

use crate::error::{Error, ErrorKind};
use crate::jwks::Demand;

/// Why an attempt stopped short of a verified token.
pub(crate) enum Refusal {
    /// The token is refused.
    Token(Error),
    /// The answer depends on keys we do not have yet.
    NeedKeys(Demand),
    /// The answer depends on a status list never fetched before (this URI, allowed).
    #[cfg(feature = "status-list")]
    NeedStatus(Box<str>),
}

impl Refusal {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Refusal::Token(e) => e,
            Refusal::NeedKeys(demand) => demand_error(demand),
            #[cfg(feature = "status-list")]
            Refusal::NeedStatus(_) => {
                Error::new(ErrorKind::StatusUnavailable, "status list unavailable")
            }
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Token(e)
    }
}

pub(crate) fn refuse(kind: ErrorKind, detail: &'static str) -> Refusal {
    Refusal::Token(Error::new(kind, detail))
}

pub(crate) fn demand_error(demand: Demand) -> Error {
    match demand {
        Demand::NoKeys => Error::new(ErrorKind::KeySetUnavailable, "no usable key set"),
        Demand::UnknownKid { .. } => Error::new(
            ErrorKind::UnknownKey,
            "no key matches the token's kid and alg",
        ),
    }
}
