pub mod broadcast;
pub mod health;
pub mod hibernation;
pub mod restart;
pub mod routing;
