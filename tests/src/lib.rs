//! e2e helpers
pub mod rabbit;
pub mod s3;
