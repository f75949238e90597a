//! One module per page.

pub mod home;
pub mod not_found;
pub mod profile;
pub mod register;
pub mod sign_in;
pub mod status;
pub mod unlock;
