pub mod auth;
pub mod bad_input;
pub mod cold_path;
pub mod health;
pub mod hibernation;
pub mod live;
pub mod restart;
pub mod routing;
