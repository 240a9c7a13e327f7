//! e2e helpers
pub mod dashboard;
pub mod process;
pub mod prometheus;
pub mod rabbit;
pub mod s3;
