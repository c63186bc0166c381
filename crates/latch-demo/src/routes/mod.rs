//! Request handlers, by area.

pub mod api;
pub mod auth;
pub mod pages;
