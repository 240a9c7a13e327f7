//! e2e helpers
pub mod s3;
pub mod rabbit;
