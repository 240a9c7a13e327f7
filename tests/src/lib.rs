//! e2e helpers
pub mod prometheus;
pub mod rabbit;
pub mod s3;
