//! Shared plumbing for the server binaries.
